"""A replicated PostgreSQL for development and tests: etcd + Patroni + pgBackRest (issue 15, ADR 0037).

:mod:`jukinet.cluster.local` starts, inspects, switches over and stops a local cluster — the real
Debian components (``etcd-server``, ``patroni``, ``postgresql-15``, ``pgbackrest``) on 127.0.0.1
ports in one directory. ``jukinet cluster …`` (:mod:`jukinet.cli.cluster`) is its door. It knows
nothing of the registers: jukinet reaches the cluster through an ordinary multi-host database URL
(:func:`jukinet.store.engine.postgres_url`).
"""
