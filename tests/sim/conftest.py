"""The simulators' tests use the 事務1 fixtures (PKI, servers on free ports)."""

from intake.conftest import cs, installation, national, server  # noqa: F401
