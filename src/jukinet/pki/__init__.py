"""PKI of the 住基ネット channels (ADR 0005, 0030).

- :mod:`jukinet.pki.certs` — the CA, certificates, TLS contexts and peer identities;
- :mod:`jukinet.pki.crl` — certificate revocation: the running checker and the development CA's CRL;
- :mod:`jukinet.pki.dev` — the development PKI that ``jukinet init`` creates.

``from jukinet import pki`` gives the certificate functions and :func:`ensure_dev_pki`.
"""

from jukinet.pki.certs import *  # noqa: F401,F403
from jukinet.pki.certs import __all__ as _certs_all
from jukinet.pki.dev import ensure_dev_pki  # noqa: F401

__all__ = [*_certs_all, "ensure_dev_pki"]
