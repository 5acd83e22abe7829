"""Storage of both registers: tables, engines, repositories, unit of work, migrations.

D1 (住民票 side) and D2 (附票 side) live in separate databases: two SQLite files, or two
PostgreSQL schemas each owned by its own role (ADR 0002). Nothing here joins across them.
"""
