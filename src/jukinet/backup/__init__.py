"""A7 — daily encrypted backups of both registers and the admin database (ADR 0024).

``container`` is the file format (``jukinet.backup/1``: envelope encryption, AES-256-GCM in
authenticated chunks), ``keys`` the prefecture's key pair and the key providers that open a backup,
``snapshot`` the consistent copy of the three databases, ``service`` the use cases (backup, list,
verify, restore, generations, status file) and ``cli`` the ``jukinet backup`` / ``jukinet restore``
commands.
"""
