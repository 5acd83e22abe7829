"""Compatibility: the operator-side fixtures live in ``operator_site.py``; other folders load this
file by path (``tests/provision/test_web.py``) to reuse them. Loaded by path here too, so it works
whether or not ``tests/web`` is on ``sys.path``."""

import importlib.util
import sys
from pathlib import Path

if "operator_site" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("operator_site", Path(__file__).with_name("operator_site.py"))
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["operator_site"] = _mod
    _spec.loader.exec_module(_mod)

from operator_site import (ADMIN, PEOPLE, PERSONAS, Site, activate, call, juki, make_site, refusals, seed_people,  # noqa: E402,F401,E501
                           site)
