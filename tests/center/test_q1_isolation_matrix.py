"""Q1 (issue 14; ADR 0045): the tenant isolation matrix — for every door of the center (CS intake,
the operator web pages, the terminal JSON API, the center CLI with ``--prefecture``, the operations
view, backups, metrics) and in both directions (愛知県 → 三重県, 三重県 → 愛知県), tenant A's own
request works and nothing it can send reads or changes tenant B's files. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from jukinet_testing import BACKENDS
from sqlalchemy import func, select
from test_q1_center import (AICHI_NAME, MIE_NAME, NAKA, TSU, _operator, cs_client, jcode, juki_codes, kbango,
                            make_center, notification)
from typer.testing import CliRunner

from jukinet.backup.keys import PRIVATE_NAME, PrivateKeyFile
from jukinet.backup.service import backup_dir, run_and_record, verify_backup
from jukinet.center_server import CenterServer
from jukinet.cli import app as cli
from jukinet.errors import JukinetError
from jukinet.store.tables import juki_history
from jukinet.web import auth as A

PEOPLE = {24: dict(muni=TSU, code=jcode(24_300_001), name=MIE_NAME, kana="ミエ\u3000イチロウ"),
          23: dict(muni=NAKA, code=jcode(23_300_001), name=AICHI_NAME, kana="アイチ\u3000ハナコ")}
DOORS = ["cs_intake", "operator_web", "terminal_api", "cli_prefecture", "ops_view", "backups", "metrics"]
DIRECTIONS = [(23, 24), (24, 23)]


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    """三重県 and 愛知県 served by one center; one resident and one operator (terminal, session) each."""
    c = make_center(tmp_path_factory.mktemp(f"iso-{request.param}"), request.param, request)
    srv = CenterServer(c, outbox=False).start()
    ops = {}
    for n, p in PEOPLE.items():
        with cs_client(c, srv, n, p["muni"]) as cs:
            r = cs.post("/cs/v1/notifications", json=notification(f"iso-{n}", p["muni"], p["code"], p["name"], p["kana"]))
            assert r.status_code == 200, r.text
        ops[n] = _operator(srv.tenants[n].installation, f"iso{n}")
    yield c, srv, ops
    srv.stop()


def state(inst) -> tuple:
    """What a change to a tenant's files would show: its residents and its history."""
    with inst.registers.engine("juki").connect() as conn:
        history = conn.execute(select(func.count()).select_from(juki_history)).scalar()
    return juki_codes(inst), history


def secrets_of(n: int) -> list[str]:
    p = PEOPLE[n]
    return [p["name"], p["kana"], p["code"], kbango(int(p["code"][:10]))]


def assert_no_data_of(text: str, *tenants: int) -> None:
    for n in tenants:
        for s in secrets_of(n):
            assert s not in text, (n, s)


# ---- the doors: each returns after checking A's own use, A's attempts on B ------------------------

def cs_intake(c, srv, ops, a, b):
    pa, pb = PEOPLE[a], PEOPLE[b]
    with cs_client(c, srv, a, pa["muni"]) as cs:
        # own: a new resident of A is accepted (and lands in A)
        own = notification(f"own-{a}-{b}", pa["muni"], jcode(a * 1_000_000 + 500 + b), pa["name"], pa["kana"])
        assert cs.post("/cs/v1/notifications", json=own).status_code == 200
        # B's municipality, B's resident, in the body: refused
        r = cs.post("/cs/v1/notifications", json=notification(f"x-{a}-{b}", pb["muni"], pb["code"], "改ざん 太郎", "カイザン"))
        assert r.status_code == 422 and r.json()["status"] == "rejected", r.text
        r = cs.post("/cs/v1/notifications:batch", json={"notifications": [
            notification(f"xb-{a}-{b}", pb["muni"], jcode(b * 1_000_000 + 999), "改ざん 太郎", "カイザン")]})
        assert r.status_code in (200, 207, 422) and "accepted" not in r.text, r.text
        # the consistency channel answers about A's own municipality only
        due = cs.get("/cs/v1/consistency/juki/due")
        assert due.status_code == 200 and due.json()["municipality_code"] == pa["muni"]
        assert_no_data_of(r.text + due.text, b)
    # A's municipality with a certificate from B's CA: routed to A, refused by A (not B's CA)
    with cs_client(c, srv, a, pa["muni"] if a == 23 else "242021", issuer=b) as forged:
        r = forged.post("/cs/v1/notifications", json=notification(f"f-{a}-{b}", pb["muni"], pb["code"], "改ざん", "カイザン"))
        assert r.status_code in (401, 403, 422), r.text


def _browser(c, term, tok):
    return httpx.Client(base_url=f"http://127.0.0.1:{c.port}", cookies={A.TERMINAL_COOKIE: term, A.SESSION_COOKIE: tok})


def operator_web(c, srv, ops, a, b):
    (term_a, tok_a), (_term_b, tok_b) = ops[a], ops[b]
    name_a = srv.tenants[a].installation.config.prefecture_name
    name_b = srv.tenants[b].installation.config.prefecture_name
    with _browser(c, term_a, tok_a) as own:
        page = own.get("/search")
        assert page.status_code == 200 and name_a in page.text and name_b not in page.text
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)
        hdr = {"X-CSRF-Token": csrf}
        mine = own.post("/search", data={"purpose_code": "inquiry", "registers": "juki", "name": PEOPLE[a]["kana"][:2],
                                         "name_match": "prefix"}, headers=hdr, follow_redirects=True)   # PRG (ADR 0043)
        assert mine.status_code == 200 and PEOPLE[a]["name"] in mine.text
        r = own.post("/search", data={"purpose_code": "inquiry", "registers": "juki", "name": PEOPLE[b]["kana"][:2],
                                      "name_match": "prefix"}, headers=hdr, follow_redirects=True)
        assert r.status_code == 200
        assert_no_data_of(r.text, b)
        r = own.post("/detail", data={"purpose_code": "inquiry", "register": "juki",
                                      "juminhyo_code": PEOPLE[b]["code"]}, headers=hdr)
        assert r.status_code == 404 and "NOT_FOUND" in r.text
        assert_no_data_of(r.text, b)
    # A's terminal with B's session: A knows no such session
    with _browser(c, term_a, tok_b) as mixed:
        r = mixed.get("/search", follow_redirects=False)
        assert r.status_code in (303, 401, 403)
        assert_no_data_of(r.text, b)


def terminal_api(c, srv, ops, a, b):
    (term_a, tok_a), (_tb, tok_b) = ops[a], ops[b]
    base = f"http://127.0.0.1:{c.port}"

    def api(term, tok):
        return httpx.Client(base_url=base, headers={A.TERMINAL_HEADER: term, "Authorization": f"Bearer {tok}"})

    search = {"purpose_code": "inquiry", "registers": ["juki"], "name_match": "prefix"}
    with api(term_a, tok_a) as own:
        r = own.post("/api/v1/search", json={**search, "name": PEOPLE[a]["kana"][:2]})
        assert r.status_code == 200 and r.json()["total"] >= 1
        r = own.post("/api/v1/search", json={**search, "name": PEOPLE[b]["kana"][:2]})
        assert r.status_code == 200 and r.json()["total"] == 0
        r = own.post("/api/v1/persons/detail", json={"purpose_code": "inquiry", "register": "juki",
                                                     "juminhyo_code": PEOPLE[b]["code"]})
        assert r.status_code in (400, 404) and r.json()["error"]["code"] == "NOT_FOUND"
        assert_no_data_of(r.text, b)
    with api(term_a, tok_b) as mixed:
        r = mixed.post("/api/v1/search", json={**search, "name": PEOPLE[b]["kana"][:2]})
        assert r.status_code in (401, 403)
        assert_no_data_of(r.text, b)


def cli_prefecture(c, srv, ops, a, b):
    run = CliRunner().invoke
    r = run(cli, ["center", "status", "--center-dir", str(c.dir), "--prefecture", str(a), "--json"])
    assert r.exit_code == 0, r.output
    assert [t["prefecture"] for t in json.loads(r.stdout)["tenants"]] == [a]
    b_dir = backup_dir(srv.tenants[b].installation.config)
    b_backups = sorted(b_dir.glob("*.jkb")) if b_dir.exists() else []
    r = run(cli, ["center", "backup", "--center-dir", str(c.dir), "--prefecture", str(a)])
    assert r.exit_code == 0, r.output
    assert (sorted(b_dir.glob("*.jkb")) if b_dir.exists() else []) == b_backups     # B's backups untouched
    r2 = run(cli, ["center", "remove", "--center-dir", str(c.dir), "--prefecture", str(b)])   # no --confirm
    assert r2.exit_code == 2 and "CENTER_CONFIRM_REQUIRED" in r2.output
    assert_no_data_of(r.output + r2.output, a, b)


def ops_view(c, srv, ops, a, b):
    base = f"http://127.0.0.1:{c.port}"
    term_a, _ = ops[a]
    for client in (httpx.Client(base_url=base), httpx.Client(base_url=base, cookies={A.TERMINAL_COOKIE: term_a})):
        with client:
            r = client.get("/center/api/status")
            page = client.get("/center/ops")
        assert r.status_code == 200 and {t["prefecture"] for t in r.json()["tenants"]} == {23, 24}
        assert_no_data_of(r.text + page.text, a, b)
    # from anywhere but the center's own host: refused, logged in the center log
    async def from_remote():
        transport = httpx.ASGITransport(app=srv.app, client=("10.20.30.40", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://center") as remote:
            return await remote.get("/center/api/status")

    remote_r = asyncio.run(from_remote())
    assert remote_r.status_code == 403 and remote_r.json()["error"]["code"] == "CENTER_OPS_FORBIDDEN"


def backups(c, srv, ops, a, b):
    cfg_a, cfg_b = srv.tenants[a].installation.config, srv.tenants[b].installation.config
    result = run_and_record(cfg_a, actor="test")
    assert cfg_a.data_dir in result.path.parents
    key_a = PrivateKeyFile(cfg_a.data_dir / "demo-backup-key" / PRIVATE_NAME)
    key_b = PrivateKeyFile(cfg_b.data_dir / "demo-backup-key" / PRIVATE_NAME)
    got = verify_backup(result.path, key_a)
    assert got["header"]["prefecture_code"] == cfg_a.prefecture_code
    with pytest.raises(JukinetError):                   # B's governor cannot open A's backup
        verify_backup(result.path, key_b)
    data = result.path.read_bytes()
    for s in secrets_of(a) + secrets_of(b):
        assert s.encode("utf-8") not in data


def _accepted(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("jukinet_intake_notifications_total{") and 'outcome="accepted"' in line)


def metrics(c, srv, ops, a, b):
    base = f"http://127.0.0.1:{c.port}"

    def scrape(n):
        with httpx.Client(base_url=base, cookies={A.TERMINAL_COOKIE: ops[n][0]}) as client:
            r = client.get("/metrics")
        assert r.status_code == 200 and "jukinet_" in r.text
        assert_no_data_of(r.text, a, b)
        return r.text

    before_a, before_b = _accepted(scrape(a)), _accepted(scrape(b))
    pa = PEOPLE[a]
    with cs_client(c, srv, a, pa["muni"]) as cs:         # A's own CS sends one notification
        r = cs.post("/cs/v1/notifications", json=notification(
            f"m-{a}-{b}", pa["muni"], jcode(a * 1_000_000 + 700 + b), pa["name"], pa["kana"]))
        assert r.status_code == 200, r.text
    assert _accepted(scrape(a)) == before_a + 1           # A counts its own notification …
    assert _accepted(scrape(b)) == before_b               # … B's metrics do not see it
    with httpx.Client(base_url=base) as anon:               # no terminal: no tenant, no metrics
        r = anon.get("/metrics")
    assert r.status_code == 403 and "TERMINAL_UNREGISTERED" in r.text


@pytest.mark.parametrize("a,b", DIRECTIONS, ids=["aichi_to_mie", "mie_to_aichi"])
@pytest.mark.parametrize("door", DOORS)
def test_q1_tenant_isolation_matrix(world, door, a, b):
    c, srv, ops = world
    inst_b = srv.tenants[b].installation
    before = state(inst_b)
    globals()[door](c, srv, ops, a, b)
    assert state(inst_b) == before          # nothing of B changed, whatever A sent
    assert PEOPLE[b]["code"] in juki_codes(inst_b) and PEOPLE[b]["code"] not in juki_codes(srv.tenants[a].installation)
