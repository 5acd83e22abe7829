"""Q1 (issue 14; ADR 0045): the tenant isolation matrix — for every door of the center (CS intake,
the operator web pages, the terminal JSON API, the center CLI with ``--prefecture``, the operations
view, backups, metrics) and in both directions (愛知県 → 三重県, 三重県 → 愛知県), tenant A's own
request works and nothing it can send reads or changes tenant B's files. Where the center refuses
before any tenant sees the request, the refusal is in the hash-chained operation log of the owner (the
prefecture whose files were aimed at) and of the caller's prefecture, with the code the caller got and
no personal data (ADR 0053). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from jukinet_testing import BACKENDS
from sqlalchemy import func, select
from test_q1_center import (AICHI_NAME, GIFU, MIE_NAME, NAKA, TSU, _operator, cs_client, jcode, juki_codes, kbango,
                            make_center, notification)
from typer.testing import CliRunner

from jukinet.backup.keys import PRIVATE_NAME, PrivateKeyFile
from jukinet.backup.service import backup_dir, run_and_record, verify_backup
from jukinet.center_server import CenterServer
from jukinet.cli import app as cli
from jukinet.errors import JukinetError
from jukinet.security.oplog import OPLOG
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


FORGED = "改ざん"


def head(srv, n: int) -> int:
    """The seq of the last entry of tenant ``n``'s admin chain."""
    log, _ = OPLOG["admin"]
    with srv.tenants[n].installation.registers.engine("admin").connect() as conn:
        return conn.execute(select(func.coalesce(func.max(log.c.seq), 0))).scalar()


def center_refusals(srv, n: int, since: int) -> list[dict]:
    """The ``center_refused`` entries of tenant ``n``'s own chain after ``since`` (ADR 0053)."""
    log, _ = OPLOG["admin"]
    with srv.tenants[n].installation.registers.engine("admin").connect() as conn:
        rows = conn.execute(select(log).where(log.c.seq > since, log.c.action == "center_refused")
                            .order_by(log.c.seq)).all()
    out = []
    for r in rows:
        assert r.outcome == "refused"
        text = json.dumps([r.operator_id, r.terminal_id, r.detail], ensure_ascii=False)
        assert_no_data_of(text, 23, 24)
        assert FORGED not in text
        out.append({"actor": r.operator_id, "terminal": r.terminal_id, **json.loads(r.detail)})
    return out


def _codes(entries: list[dict]) -> list[tuple]:
    return [(e["code"], e["door"], e["caller_prefecture"], tuple(e["target_prefectures"])) for e in entries]


# ---- the doors: each returns after checking A's own use, A's attempts on B ------------------------

def cs_intake(c, srv, ops, a, b):
    pa, pb = PEOPLE[a], PEOPLE[b]
    since = {a: head(srv, a), b: head(srv, b)}
    with cs_client(c, srv, a, pa["muni"]) as cs:
        # own: a new resident of A is accepted (and lands in A)
        own = notification(f"own-{a}-{b}", pa["muni"], jcode(a * 1_000_000 + 500 + b), pa["name"], pa["kana"])
        assert cs.post("/cs/v1/notifications", json=own).status_code == 200
        # B's municipality, B's resident, in the body: refused by the center before any tenant
        r = cs.post("/cs/v1/notifications", json=notification(f"x-{a}-{b}", pb["muni"], pb["code"], FORGED + " 太郎", "カイザン"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "TENANT_MISMATCH", r.text
        # a batch with one of B's among A's own: the whole request refused, A's own one not applied either
        r = cs.post("/cs/v1/notifications:batch", json={"notifications": [
            notification(f"xa-{a}-{b}", pa["muni"], jcode(a * 1_000_000 + 800 + b), pa["name"], pa["kana"]),
            notification(f"xb-{a}-{b}", pb["muni"], jcode(b * 1_000_000 + 999), FORGED + " 太郎", "カイザン")]})
        assert r.status_code == 403 and r.json()["error"]["code"] == "TENANT_MISMATCH", r.text
        assert jcode(a * 1_000_000 + 800 + b) not in juki_codes(srv.tenants[a].installation)
        # the consistency channel answers about A's own municipality only
        due = cs.get("/cs/v1/consistency/juki/due")
        assert due.status_code == 200 and due.json()["municipality_code"] == pa["muni"]
        assert_no_data_of(r.text + due.text, b)
    # A's municipality with a certificate from B's CA, naming B's municipality: refused by the center
    forged_code = pa["muni"] if a == 23 else "242021"
    with cs_client(c, srv, a, forged_code, issuer=b) as forged:
        r = forged.post("/cs/v1/notifications", json=notification(f"f-{a}-{b}", pb["muni"], pb["code"], FORGED, "カイザン"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "TENANT_MISMATCH", r.text
    # a CS of a prefecture the center does not host (岐阜県), naming B's municipality
    with cs_client(c, srv, a, GIFU, issuer=a) as stranger:
        r = stranger.post("/cs/v1/notifications", json=notification(f"g-{a}-{b}", pb["muni"], pb["code"], FORGED, "カイザン"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "TENANT_UNKNOWN", r.text

    # the owner (B) has every one in its own chain, with the code the caller got; the caller (A) its own CS's
    mismatch = ("TENANT_MISMATCH", "cs_intake", a, (b,))
    got_b = center_refusals(srv, b, since[b])
    assert _codes(got_b) == [mismatch, mismatch, mismatch, ("TENANT_UNKNOWN", "cs_intake", 21, (b,))]
    assert [e["actor"] for e in got_b] == [f"lg:{pa['muni']}"] * 2 + [f"lg:{forged_code}", f"lg:{GIFU}"]
    assert all(len(e["fingerprint"]) == 64 for e in got_b)
    got_a = center_refusals(srv, a, since[a])
    assert _codes(got_a) == [mismatch, mismatch, mismatch]
    # and the center log, by code, without personal data
    tail = [e for e in c.read_log() if e["event"] == "cs_refused"][-4:]
    assert [(e["code"], e.get("targets")) for e in tail] == [("TENANT_MISMATCH", [b])] * 3 + [("TENANT_UNKNOWN", [b])]
    assert_no_data_of(json.dumps(tail, ensure_ascii=False), a, b)


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
    # A's terminal with B's session: refused by the center, in B's chain (its session) and A's (its terminal)
    since = {a: head(srv, a), b: head(srv, b)}
    with _browser(c, term_a, tok_b) as mixed:
        r = mixed.get("/search", follow_redirects=False)
        assert r.status_code == 403 and "TENANT_MISMATCH" in r.text
        assert_no_data_of(r.text, b)
        dropped = r.headers.get("set-cookie", "").lower()    # the browser drops B's session: next comes A's login
        assert dropped.startswith(f"{A.SESSION_COOKIE}=") and "max-age=0" in dropped
    # B's session from a browser that is no terminal at all: B is told
    with httpx.Client(base_url=f"http://127.0.0.1:{c.port}", cookies={A.SESSION_COOKIE: tok_b}) as stray:
        r = stray.get("/search", follow_redirects=False)
        assert r.status_code == 403 and "TERMINAL_UNREGISTERED" in r.text
    _assert_session_refusals(srv, ops, a, b, since, "operator")


def _assert_session_refusals(srv, ops, a, b, since, door):
    got_b = center_refusals(srv, b, since[b])
    assert _codes(got_b) == [("TENANT_MISMATCH", door, a, (b,)), ("TERMINAL_UNREGISTERED", door, None, (b,))]
    assert [e["actor"] for e in got_b] == [f"OP-ISO{b}"] * 2          # B's own operator, whose session it was
    got_a = center_refusals(srv, a, since[a])
    assert _codes(got_a) == [("TENANT_MISMATCH", door, a, (b,))]
    assert got_a[0]["actor"] is None and got_a[0]["terminal"] == ops[a][0].split(".")[0]   # A's own terminal


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
    since = {a: head(srv, a), b: head(srv, b)}
    with api(term_a, tok_b) as mixed:
        r = mixed.post("/api/v1/search", json={**search, "name": PEOPLE[b]["kana"][:2]})
        assert r.status_code == 403 and r.json()["error"]["code"] == "TENANT_MISMATCH"
        assert_no_data_of(r.text, b)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tok_b}"}) as stray:
        r = stray.post("/api/v1/search", json={**search, "name": PEOPLE[b]["kana"][:2]})
        assert r.status_code == 403 and r.json()["error"]["code"] == "TERMINAL_UNREGISTERED"
    _assert_session_refusals(srv, ops, a, b, since, "operator")


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
    since = {a: head(srv, a), b: head(srv, b)}
    r2 = run(cli, ["center", "remove", "--center-dir", str(c.dir), "--prefecture", str(b)])   # no --confirm
    assert r2.exit_code == 2 and "CENTER_CONFIRM_REQUIRED" in r2.output
    got_b = center_refusals(srv, b, since[b])                 # the prefecture the command named is told
    assert _codes(got_b) == [("CENTER_CONFIRM_REQUIRED", "center_cli", None, (b,))] and got_b[0]["actor"] == "center"
    assert center_refusals(srv, a, since[a]) == []
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
    # from anywhere but the center's own host: refused, logged in the center log; a prefecture whose
    # terminal asked from outside has it in its own chain
    async def from_remote(cookies=None):
        transport = httpx.ASGITransport(app=srv.app, client=("10.20.30.40", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://center", cookies=cookies) as remote:
            return await remote.get("/center/api/status")

    since = {a: head(srv, a), b: head(srv, b)}
    for cookies in (None, {A.TERMINAL_COOKIE: term_a}):
        remote_r = asyncio.run(from_remote(cookies))
        assert remote_r.status_code == 403 and remote_r.json()["error"]["code"] == "CENTER_OPS_FORBIDDEN"
    assert _codes(center_refusals(srv, a, since[a])) == [("CENTER_OPS_FORBIDDEN", "ops_view", a, ())]
    assert center_refusals(srv, b, since[b]) == []
    assert [e.get("prefecture") for e in c.read_log() if e["event"] == "ops_refused"][-2:] == [None, a]


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
    since = {a: head(srv, a), b: head(srv, b)}
    with httpx.Client(base_url=base) as anon:               # no terminal: no tenant, no metrics
        r = anon.get("/metrics")
    assert r.status_code == 403 and "TERMINAL_UNREGISTERED" in r.text
    assert center_refusals(srv, a, since[a]) == center_refusals(srv, b, since[b]) == []   # nobody's: center log only
    assert c.read_log()[-1]["code"] == "TERMINAL_UNREGISTERED"
    # A's terminal with B's session: refused, B (the session's owner) and A (the terminal's) told
    with httpx.Client(base_url=base, cookies={A.TERMINAL_COOKIE: ops[a][0], A.SESSION_COOKIE: ops[b][1]}) as mixed:
        r = mixed.get("/metrics")
    assert r.status_code == 403 and "TENANT_MISMATCH" in r.text
    assert _codes(center_refusals(srv, b, since[b])) == [("TENANT_MISMATCH", "operator", a, (b,))]
    assert _codes(center_refusals(srv, a, since[a])) == [("TENANT_MISMATCH", "operator", a, (b,))]


@pytest.mark.parametrize("a,b", DIRECTIONS, ids=["aichi_to_mie", "mie_to_aichi"])
@pytest.mark.parametrize("door", DOORS)
def test_q1_tenant_isolation_matrix(world, door, a, b):
    c, srv, ops = world
    inst_b = srv.tenants[b].installation
    before = state(inst_b)
    globals()[door](c, srv, ops, a, b)
    assert state(inst_b) == before          # nothing of B changed, whatever A sent
    assert PEOPLE[b]["code"] in juki_codes(inst_b) and PEOPLE[b]["code"] not in juki_codes(srv.tenants[a].installation)
