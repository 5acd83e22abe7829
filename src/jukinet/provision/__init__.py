"""事務2 and 事務4 — provision and transfer to other bodies, batch provision on media, queries to the
national servers, the provision record (P1–P6, N1, A5, A11; ADR 0015–0018).

* :mod:`~jukinet.provision.catalogue` — requesters, affairs (legal basis, register, items, 個人番号)
  and grants, as data (``catalogue.toml``);
* :mod:`~jukinet.provision.service` — single provision (terminal, API) and national queries;
* :mod:`~jukinet.provision.batch` — 一括提供 by file, streamed into an encrypted
  :mod:`~jukinet.provision.media` container, with the media register and managers' approvals
  (:mod:`~jukinet.provision.approvals`);
* :mod:`~jukinet.provision.records` — the provision record and :func:`provisions_for_person`;
* :mod:`~jukinet.provision.kojin_bango_link` — the one path from D1 to the 附票 side (P6), with
  its temporary area (:mod:`~jukinet.provision.tempstore`).
"""

from jukinet.provision.records import provisions_for_person  # noqa: F401
