"""Q1 (issue 16): ``jukinet center serve`` refuses to start when a tenant's seed is running or was
interrupted (``SEED_IN_PROGRESS``, naming the prefecture and the command that resumes it). SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from jukinet_testing import BACKENDS
from sqlalchemy import update
from test_q1_center import free_port
from test_q1_center_adopt import single_installation
from typer.testing import CliRunner

from jukinet.bootstrap import bootstrap
from jukinet.center.registry import init_center
from jukinet.center.tenants import adopt_tenant
from jukinet.center_server import CenterServer
from jukinet.cli import app as cli
from jukinet.errors import JukinetError
from jukinet.store.tables import juki_seed_progress


def _interrupt(regs) -> None:
    with regs.engine("juki").begin() as c:
        c.execute(update(juki_seed_progress).values(complete=False))


@pytest.mark.parametrize("backend", BACKENDS)
def test_q1_center_serve_refuses_a_tenant_with_a_seed_in_progress(backend, tmp_path, request):
    d = single_installation(tmp_path, backend, request)
    c = init_center(tmp_path / "center", port=free_port())
    adopt_tenant(c, d, "24")
    with bootstrap(d) as inst:
        _interrupt(inst.registers)
    with pytest.raises(JukinetError) as e:
        CenterServer(c)
    assert e.value.code == "SEED_IN_PROGRESS" and "三重県" in e.value.message and "jukinet seed" in e.value.message
    r = CliRunner().invoke(cli, ["center", "serve", "--center-dir", str(c.dir)])
    assert r.exit_code == 2 and "SEED_IN_PROGRESS" in r.output
