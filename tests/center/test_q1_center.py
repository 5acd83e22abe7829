"""Q1 (issue 14; ADR 0036): a consolidated center hosting 三重県 (24) and 愛知県 (23) behind one
HTTPS server with mutual TLS — each CS reaches only its own prefecture's files, an operator only
their own tenant, the operations view shows no personal data, and removal needs a confirmation and
exports encrypted for the governor. SQLite and (with JUKINET_TEST_POSTGRES_URL) PostgreSQL."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from jukinet_testing import BACKENDS, PG_URL, PostgresDatabase
from typer.testing import CliRunner

from jukinet import geo, pki
from jukinet.backup.container import read_header
from jukinet.backup.keys import PRIVATE_NAME, PrivateKeyFile
from jukinet.backup.service import verify_backup
from jukinet.center.registry import Center, init_center
from jukinet.center.tenants import add_tenant
from jukinet.center_server import CenterServer
from jukinet.cli import app as cli
from jukinet.codes import juminhyo_code_check_digit, kojin_bango_check_digit
from jukinet.intake.service import today_jst
from jukinet.intake.wire import SCHEMA
from jukinet.pki.certs import PeerIdentity, cs_paths, issue
from jukinet.security.oplog import Actor
from jukinet.store.tables import juki_current
from jukinet.store.tables_security import operators
from jukinet.web import auth as A
from sqlalchemy import select, update


TSU = "242012"                      # 津市 (三重県)
NAKA = "231061"                     # 名古屋市中区 (愛知県)
GIFU = geo.municipalities(21)[0].code   # a municipality of 岐阜県 (not hosted)
OTHER_AICHI = next(m.code for m in geo.municipalities(23) if m.code != NAKA)
MIE_NAME, AICHI_NAME = "三重\u3000一郎", "愛知\u3000花子"
ADMIN = Actor("bootstrap", None)


def jcode(n: int) -> str:
    first = f"{n:010d}"
    return first + juminhyo_code_check_digit(first)


def kbango(n: int) -> str:
    first = f"{n + 10**10:011d}"
    return first + kojin_bango_check_digit(first)


def notification(nid: str, muni: str, code: str, name: str, kana: str) -> dict:
    m = geo.by_code(muni)
    town = geo.towns(muni)[0]
    return {"schema": SCHEMA, "notification_id": nid, "register": "juki", "municipality_code": muni,
            "reason": "国内転入", "change_date": (today_jst() - timedelta(days=1)).isoformat(), "juminhyo_code": code,
            "new_juminhyo_code": None,
            "record": {"name": name, "name_kana": kana, "birth_date": "1980-04-01", "sex": "1",
                       "address": f"{m.address_prefix}{town.name}1番地", "oaza_code": town.oaza_code,
                       "kojin_bango": kbango(int(code[:10])), "former_surname": None}}


def juki_codes(inst) -> set[str]:
    with inst.registers.juki_uow(write=False) as uow:
        return set(uow.conn.execute(select(juki_current.c.juminhyo_code)).scalars().all())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_center(tmp_path, backend: str, request, prefectures=(24, 23)) -> Center:
    c = init_center(tmp_path / "center", port=free_port())
    for n in prefectures:
        url = None
        if backend == "postgres":
            pg = PostgresDatabase(PG_URL)
            request.addfinalizer(pg.drop)
            url = pg.url
        add_tenant(c, n, db_url=url, training_required=False)
    return c


@pytest.fixture(scope="module", params=BACKENDS)
def running(request, tmp_path_factory):
    """A center with 三重県 and 愛知県, served over HTTPS (no outbox: nothing leaves)."""
    backend = request.param
    c = make_center(tmp_path_factory.mktemp(f"c-{backend}"), backend, request)
    srv = CenterServer(c, outbox=False).start()
    yield c, srv
    srv.stop()


def cs_client(center: Center, srv: CenterServer, tenant: int, code: str, *, issuer: int | None = None) -> httpx.Client:
    """A CS of ``code`` with a certificate from tenant ``issuer``'s CA (default: its own)."""
    cfg = srv.tenants[issuer or tenant].installation.config
    cert, key = cs_paths(cfg.resolve(cfg.tls.cs_dir), code)
    if not cert.exists():          # a certificate the tenant's CA would not normally issue (tests only)
        ca_key = pki.certs.serialization.load_pem_private_key(cfg.resolve(cfg.tls.ca_key).read_bytes(), None)
        issue(pki.load_cert(cfg.resolve(cfg.tls.ca_cert)), ca_key, PeerIdentity("cs", code), cert, key,
              common_name=f"市町村CS {code}", client=True)
    ctx = pki.client_context(cert, key, center.ca_cert)
    return httpx.Client(base_url=srv.base_url, verify=ctx, timeout=30)


# ---- CS intake ---------------------------------------------------------------------------------------

def test_q1_each_cs_notification_lands_only_in_its_own_prefecture(running):
    c, srv = running
    mie, aichi = srv.tenants[24].installation, srv.tenants[23].installation
    m_code, a_code = jcode(24_000_001), jcode(23_000_001)
    with cs_client(c, srv, 24, TSU) as cs:
        r = cs.post("/cs/v1/notifications", json=notification("m-1", TSU, m_code, MIE_NAME, "ミエ\u3000イチロウ"))
        assert r.status_code == 200, r.text
    with cs_client(c, srv, 23, NAKA) as cs:
        r = cs.post("/cs/v1/notifications", json=notification("a-1", NAKA, a_code, AICHI_NAME, "アイチ\u3000ハナコ"))
        assert r.status_code == 200, r.text
    assert m_code in juki_codes(mie) and m_code not in juki_codes(aichi)
    assert a_code in juki_codes(aichi) and a_code not in juki_codes(mie)


def test_q1_a_nagoya_cs_naming_a_mie_municipality_is_refused_and_nothing_changes(running):
    c, srv = running
    mie, aichi = srv.tenants[24].installation, srv.tenants[23].installation
    before = (juki_codes(mie), juki_codes(aichi))
    code = jcode(24_000_099)
    with cs_client(c, srv, 23, NAKA) as cs:
        r = cs.post("/cs/v1/notifications", json=notification("x-1", TSU, code, MIE_NAME, "ミエ\u3000イチロウ"))
        # 愛知県's own municipality, another one of 愛知県: refused by 愛知県 itself, as before
        r3 = cs.post("/cs/v1/notifications", json=notification("x-3", OTHER_AICHI, jcode(23_000_099), AICHI_NAME, "アイチ"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "TENANT_MISMATCH", r.text   # by the center
    assert r3.status_code == 422 and r3.json()["error"]["code"] == "MUNICIPALITY_MISMATCH", r3.text
    # a certificate of 名古屋市 issued by 三重県's CA goes to 愛知県 (by its code) and is refused there
    with cs_client(c, srv, 23, "231002", issuer=24) as cs:
        r2 = cs.post("/cs/v1/notifications", json=notification("x-2", TSU, code, MIE_NAME, "ミエ\u3000イチロウ"))
    assert r2.status_code == 403, r2.text
    assert (juki_codes(mie), juki_codes(aichi)) == before


def test_q1_a_certificate_of_a_prefecture_not_hosted_is_refused_tenant_unknown(running):
    c, srv = running
    before = (juki_codes(srv.tenants[24].installation), juki_codes(srv.tenants[23].installation))
    with cs_client(c, srv, 24, GIFU, issuer=24) as cs:
        r = cs.post("/cs/v1/notifications", json=notification("g-1", GIFU, jcode(21_000_001), MIE_NAME, "ミエ"))
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "TENANT_UNKNOWN" and "収容されていません" in err["message"]
    assert any(e.get("code") == "TENANT_UNKNOWN" and e.get("prefecture") == 21 for e in c.read_log())
    assert (juki_codes(srv.tenants[24].installation), juki_codes(srv.tenants[23].installation)) == before
    # and no certificate at all on the CS channel
    r = httpx.post(f"http://127.0.0.1:{c.port}/cs/v1/notifications", json={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "CLIENT_CERT_REQUIRED"


# ---- operators ---------------------------------------------------------------------------------------

def _operator(inst, name: str) -> tuple[str, str]:
    """(terminal cookie, session token) of an active operator with search rights in ``inst``."""
    sec = inst.security
    _t, code = sec.add_terminal(ADMIN, f"{name}端末")
    tid, secret = sec.activate_terminal(code)
    op, _ = sec.register_operator(ADMIN, display_name=f"{name} 担当", roles=["operator"], registers=["juki"],
                                  affairs=["search"], operator_id=f"OP-{name.upper()}")
    with inst.registers.admin_tx() as conn:
        conn.execute(update(operators).where(operators.c.operator_id == op.operator_id).values(status="active"))
        res = sec._start_session(conn, sec.get_operator(op.operator_id), tid, "test", datetime.now(timezone.utc))
    return f"{tid}.{secret}", res.token


def test_q1_operator_of_aichi_cannot_open_a_mie_record(running):
    c, srv = running
    mie, aichi = srv.tenants[24].installation, srv.tenants[23].installation
    m_code = jcode(24_000_002)
    with cs_client(c, srv, 24, TSU) as cs:
        assert cs.post("/cs/v1/notifications",
                       json=notification("m-2", TSU, m_code, MIE_NAME, "ミエ\u3000イチロウ")).status_code == 200
    a_term, a_tok = _operator(aichi, "aichi")
    m_term, m_tok = _operator(mie, "mie")
    base = f"http://127.0.0.1:{c.port}"      # the operator side on loopback (plain HTTP, as the demo)
    search = {"purpose_code": "inquiry", "registers": ["juki"], "name": "ミエ", "name_match": "prefix"}
    detail = {"purpose_code": "inquiry", "register": "juki", "juminhyo_code": m_code}

    def api(term, tok):
        return httpx.Client(base_url=base, headers={A.TERMINAL_HEADER: term, "Authorization": f"Bearer {tok}"})

    with api(m_term, m_tok) as own:
        r = own.post("/api/v1/search", json=search)
        assert r.status_code == 200 and r.json()["total"] >= 1, r.text
        assert own.post("/api/v1/persons/detail", json=detail).status_code == 200
    with api(a_term, a_tok) as other:
        r = other.post("/api/v1/search", json=search)
        assert r.status_code == 200 and r.json()["total"] == 0, r.text
        assert MIE_NAME not in r.text
        r = other.post("/api/v1/persons/detail", json=detail)
        assert r.status_code in (400, 404) and r.json()["error"]["code"] == "NOT_FOUND" and MIE_NAME not in r.text
    # a Mie session token on an Aichi terminal: the terminal decides the tenant, Aichi knows no such session
    with api(a_term, m_tok) as mixed:
        r = mixed.post("/api/v1/search", json=search)
        assert r.status_code in (401, 403) and MIE_NAME not in r.text
    # the browser side: the Aichi terminal cookie reaches Aichi's pages only
    with httpx.Client(base_url=base, cookies={A.TERMINAL_COOKIE: a_term, A.SESSION_COOKIE: m_tok}) as b:
        r = b.get("/search")
        assert r.status_code in (200, 303, 401, 403) and MIE_NAME not in r.text
    # an unregistered terminal is refused by the center (it belongs to no tenant), logged there
    with httpx.Client(base_url=base, headers={A.TERMINAL_HEADER: "T0001.forged"}) as anon:
        r = anon.post("/api/v1/search", json=search)
        assert r.status_code == 403 and r.json()["error"]["code"] == "TERMINAL_UNREGISTERED"
    assert httpx.get(f"{base}/login").status_code == 403
    assert any(e.get("code") == "TERMINAL_UNREGISTERED" for e in c.read_log())


# ---- the operations view -----------------------------------------------------------------------------

def test_q1_center_status_shows_no_personal_data(running):
    c, srv = running
    code = jcode(24_000_101)      # this test's own resident: it passes alone and in any order
    with cs_client(c, srv, 24, TSU) as cs:
        posted = cs.post("/cs/v1/notifications",
                         json=notification("status-1", TSU, code, MIE_NAME, "ミエ\u3000イチロウ"))
        assert posted.status_code == 200, posted.text
    r = httpx.get(f"http://127.0.0.1:{c.port}/center/api/status")
    assert r.status_code == 200
    rows = {t["prefecture"]: t for t in r.json()["tenants"]}
    assert set(rows) == {23, 24} and all(t["health"] == "ok" for t in rows.values())
    assert rows[24]["outbox_depth"]["juki"] >= 1 and rows[24]["cert_expires_at"] and rows[24]["disk_bytes"] > 0
    page = httpx.get(f"http://127.0.0.1:{c.port}/center/ops").text
    out = CliRunner().invoke(cli, ["center", "status", "--center-dir", str(c.dir), "--json"])
    assert out.exit_code == 0, out.output
    assert {t["prefecture"] for t in json.loads(out.stdout)["tenants"]} == {23, 24}
    for text in (r.text, page, out.stdout, (c.dir / "logs" / "center.jsonl").read_text(encoding="utf-8")):
        for secret in (MIE_NAME, AICHI_NAME, "ミエ", "アイチ", code, kbango(24_000_101),
                       jcode(24_000_001), jcode(23_000_001), kbango(24_000_001)):
            assert secret not in text
    listing = CliRunner().invoke(cli, ["center", "list", "--center-dir", str(c.dir)])
    assert "三重県" in listing.stdout and "愛知県" in listing.stdout


# ---- removal -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend_", BACKENDS)
def test_q1_center_remove_needs_confirm_then_exports_encrypted_and_detaches(backend_, tmp_path, request):
    c = make_center(tmp_path, backend_, request, prefectures=(23,))
    tenant_dir = c.tenant_dir(c.tenant(23))
    r = CliRunner().invoke(cli, ["center", "remove", "--center-dir", str(c.dir), "--prefecture", "23"])
    assert r.exit_code == 2 and "CENTER_CONFIRM_REQUIRED" in r.output
    assert Center.load(c.dir).tenant(23) is not None and tenant_dir.exists()
    r = CliRunner().invoke(cli, ["center", "remove", "--center-dir", str(c.dir), "--prefecture", "23", "--confirm"])
    assert r.exit_code == 0, r.output
    assert Center.load(c.dir).tenant(23) is None and not tenant_dir.exists()
    [archive] = list((c.dir / "exports").glob("23-*.jkb"))
    [moved] = list((c.dir / "detached").glob("23-*"))
    assert (moved / "jukinet.toml").exists()                         # moved aside, never deleted
    with open(archive, "rb") as f:
        header, _, _ = read_header(f)
    assert header["prefecture_code"] == "230006"
    assert b"center_attach" not in archive.read_bytes()                # encrypted
    res = verify_backup(archive, PrivateKeyFile(moved / "demo-backup-key" / PRIVATE_NAME))
    assert any(f["path"].startswith("db/juki") for f in res["manifest"]["files"])
    events = [e["event"] for e in Center.load(c.dir).read_log()]
    assert "tenant_remove_refused" in events and "tenant_remove" in events
