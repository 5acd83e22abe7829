"""The consolidated center (集約センター, issue 14, Q1; ADR 0036): one running jukinet hosting several
prefectures, each an ordinary installation of its own (:mod:`jukinet.bootstrap`).

* :mod:`jukinet.center.registry` — ``center.toml``: the center's address, its PKI and its tenants;
  the center log (events and refusals, codes only);
* :mod:`jukinet.center.tenants` — ``center add`` / ``remove`` (an ordinary installation per
  prefecture, on its own SQLite files or its own PostgreSQL database and roles), opening every
  tenant through the composition root, and routing a 全国地方公共団体コード to its prefecture;
* :mod:`jukinet.center.status` — the operations view: per tenant health, queue lengths, last backup,
  certificate expiry, disk use; counts of queues only, never a value of a register.

The serving door (one HTTPS server, an ASGI router in front of each tenant's ``create_app``) is
:mod:`jukinet.center_server`; the commands are :mod:`jukinet.cli.center`.
"""
