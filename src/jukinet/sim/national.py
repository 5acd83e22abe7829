"""Simulators of J-LIS's 全国サーバ and 附票全国サーバ (``jukinet sim national``).

Each is an HTTPS server that **requires** a client certificate from our CA naming a prefectural
server (``urn:jukinet:role:prefecture:NNNNNN``), on ``national.port`` / ``national.fuhyo_port``.
It keeps what arrives in its own SQLite database under ``DIR/sim/`` and answers queries about
persons from its own synthetic data (persons of other prefectures) and from what it received.

API (JSON, personal data only in POST bodies):

``POST /national/v1/updates``
    ``{"messages": [jukinet.national-update/1, …]}`` → ``{"results": [{"message_id", "status":
    "stored"|"duplicate"|"rejected", "error"}]}``, in order. Deduplicated by ``message_id``: a
    message already stored is answered ``duplicate`` and not stored again. A message of the
    wrong register, without a message_id, or (fuhyo) carrying a 個人番号 is ``rejected``.
``POST /national/v1/query``
    exactly one of ``{"juminhyo_code": …}``, ``{"kojin_bango": …}`` (全国サーバ only) or the 4情報
    ``{"name": …, "birth_date": …[, "sex": …][, "address": … (prefix)]}`` (``name`` may be
    kanji or katakana; ``name`` and ``birth_date`` are required) → ``{"count": n, "results":
    [record, …]}`` (at most 100). A record: ``juminhyo_code, name, name_kana, birth_date, sex,
    address, municipality_code, prefecture, status`` (+ ``kojin_bango`` from the 全国サーバ).
    Errors: 400 ``{"error": {"code", "message"}}``.
``GET /national/v1/health``
    ``{"status": "ok", "register": …, "received": n, "persons": n}``.

The received messages are listed, in order of receipt, by ``jukinet sim national-dump``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import date
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from jukinet import codes, kana, pki
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.intake.api import decode, peer_certificate
from jukinet.store.repository import utcnow
from jukinet import geo
from jukinet.sim.synthetic import other_prefecture_people
from jukinet.intake.transport import ServerThread, make_server
from starlette.concurrency import run_in_threadpool

KINDS = {"juki": "national", "fuhyo": "national-fuhyo"}
SYNTHETIC_PERSONS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
  receipt_seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL UNIQUE,
  received_at TEXT NOT NULL,
  sender TEXT NOT NULL,
  juminhyo_code TEXT,
  update_seq INTEGER,
  out_of_order INTEGER NOT NULL DEFAULT 0,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_received_person ON received (sender, juminhyo_code, update_seq);
CREATE TABLE IF NOT EXISTS persons (
  juminhyo_code TEXT PRIMARY KEY,
  kojin_bango TEXT,
  name TEXT NOT NULL,
  name_kana TEXT,
  seion TEXT,
  birth_date TEXT NOT NULL,
  sex TEXT NOT NULL,
  address TEXT,
  municipality_code TEXT,
  prefecture TEXT NOT NULL,
  status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_persons_kojin ON persons (kojin_bango);
CREATE INDEX IF NOT EXISTS ix_persons_name ON persons (name, birth_date);
CREATE INDEX IF NOT EXISTS ix_persons_seion ON persons (seion, birth_date);
"""


def sim_dir(config: Config) -> Path:
    return config.data_dir / "sim"


def db_path(config: Config, register: str) -> Path:
    return sim_dir(config) / ("national.sqlite3" if register == "juki" else "national-fuhyo.sqlite3")


class NationalStore:
    """What one national simulator received and knows (its own SQLite database)."""

    def __init__(self, path: Path, register: str):
        self.register = register
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    def ensure_synthetic(self, n: int = SYNTHETIC_PERSONS, seed: int = 7, prefecture_code: str = "240001") -> None:
        """Persons of other prefectures than ``prefecture_code`` (the installation's), once."""
        with self.lock:
            if self.db.execute("SELECT count(*) FROM persons WHERE prefecture != ?", (prefecture_code,)).fetchone()[0]:
                return
            people = other_prefecture_people(n, seed, date(2026, 1, 1), prefecture_code)
            rows = [(p.juminhyo_code, p.kojin_bango if self.register == "juki" else None, p.name, p.name_kana,
                     kana.seion(p.name_kana), p.birth_date.isoformat(), p.sex, p.address, p.municipality_code,
                     geo.by_code(p.municipality_code).prefecture, "現存") for p in people]
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO persons VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.execute("COMMIT")

    # --- receiving ----------------------------------------------------------------------------

    def _check(self, m: Any) -> Optional[str]:
        if not isinstance(m, dict) or not isinstance(m.get("message_id"), str) or not m["message_id"]:
            return "MESSAGE_ID_MISSING"
        if m.get("register") != self.register:
            return "REGISTER_MISMATCH"
        if self.register == "fuhyo" and "kojin_bango" in m:
            return "KOJIN_BANGO_NOT_ALLOWED"
        code = m.get("juminhyo_code")
        if not isinstance(code, str) or not codes.is_valid_juminhyo_code(code):
            return "JUMINHYO_CODE_INVALID"
        if not isinstance(m.get("update_seq"), int):
            return "UPDATE_SEQ_MISSING"
        return None

    def receive(self, sender: str, messages: list) -> list[dict]:
        results = []
        now = utcnow().isoformat()
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for m in messages:
                    problem = self._check(m)
                    if problem:
                        results.append({"message_id": m.get("message_id") if isinstance(m, dict) else None,
                                        "status": "rejected", "error": {"code": problem, "message": "受信できない通知です。"}})
                        continue
                    if self.db.execute("SELECT 1 FROM received WHERE message_id = ?", (m["message_id"],)).fetchone():
                        results.append({"message_id": m["message_id"], "status": "duplicate", "error": None})
                        continue
                    codes_ = [m["juminhyo_code"]] + ([m["previous_juminhyo_code"]]
                                                     if m.get("previous_juminhyo_code") else [])
                    last = self.db.execute(
                        f"SELECT max(update_seq) FROM received WHERE sender = ? AND juminhyo_code IN "
                        f"({','.join('?' * len(codes_))})", (sender, *codes_)).fetchone()[0]
                    ooo = int(last is not None and last > m["update_seq"])
                    self.db.execute("INSERT INTO received (message_id, received_at, sender, juminhyo_code, update_seq,"
                                    " out_of_order, body) VALUES (?,?,?,?,?,?,?)",
                                    (m["message_id"], now, sender, m["juminhyo_code"], m["update_seq"], ooo,
                                     json.dumps(m, ensure_ascii=False, sort_keys=True)))
                    self._project(m)
                    results.append({"message_id": m["message_id"], "status": "stored", "error": None})
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return results

    def _project(self, m: dict) -> None:
        """Keep the latest state of each person (for the query API)."""
        if m.get("previous_juminhyo_code"):
            self.db.execute("DELETE FROM persons WHERE juminhyo_code = ?", (m["previous_juminhyo_code"],))
        if self.register == "juki":
            status = "消除" if m.get("category") == "消除" else "現存"
            address, muni = m.get("address"), m.get("municipality_code")
        else:
            status = m.get("status") or "現存"
            address, muni = m.get("address") or m.get("last_address"), m.get("address_municipality_code")
        self.db.execute("INSERT OR REPLACE INTO persons VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (m["juminhyo_code"], m.get("kojin_bango"), m.get("name") or "", None, None,
                         m.get("birth_date") or "", m.get("sex") or "", address, muni,
                         m.get("prefecture_code") or "", status))

    def dump(self) -> list[dict]:
        rows = self.db.execute("SELECT receipt_seq, received_at, sender, out_of_order, body FROM received "
                               "ORDER BY receipt_seq").fetchall()
        out = []
        for seq, at, sender, ooo, body in rows:
            d = {"receipt_seq": seq, "received_at": at, "sender": sender, "out_of_order": bool(ooo)}
            d.update(json.loads(body))
            out.append(d)
        return out

    # --- queries ------------------------------------------------------------------------------

    def query(self, q: Any) -> list[dict]:
        if not isinstance(q, dict) or not q:
            raise JukinetError("QUERY_FORMAT", "検索条件を JSON オブジェクトで指定してください。")
        allowed = {"juminhyo_code", "kojin_bango", "name", "birth_date", "sex", "address"}
        if set(q) - allowed or any(not isinstance(v, str) for v in q.values()):
            raise JukinetError("QUERY_FORMAT", "検索条件に規定外の項目があります。")
        if "juminhyo_code" in q:
            if len(q) != 1:
                raise JukinetError("QUERY_FORMAT", "住民票コードは単独で指定してください。")
            code = codes.validate_juminhyo_code(q["juminhyo_code"])
            rows = self.db.execute("SELECT * FROM persons WHERE juminhyo_code = ?", (code,)).fetchall()
        elif "kojin_bango" in q:
            if self.register != "juki":
                raise JukinetError("KOJIN_BANGO_NOT_ALLOWED", "附票全国サーバは個人番号で検索できません。")
            if len(q) != 1:
                raise JukinetError("QUERY_FORMAT", "個人番号は単独で指定してください。")
            bango = codes.validate_kojin_bango(q["kojin_bango"])
            rows = self.db.execute("SELECT * FROM persons WHERE kojin_bango = ?", (bango,)).fetchall()
        else:
            if "name" not in q or "birth_date" not in q:
                raise JukinetError("QUERY_FORMAT", "4情報による検索では氏名と生年月日を指定してください。")
            try:
                date.fromisoformat(q["birth_date"])
            except ValueError:
                raise JukinetError("DATE_FORMAT", "生年月日は YYYY-MM-DD 形式で指定してください。") from None
            name = q["name"]
            if kana.is_kana(name):
                sql, args = "SELECT * FROM persons WHERE seion = ? AND birth_date = ?", [kana.seion(name), q["birth_date"]]
            else:
                sql, args = ("SELECT * FROM persons WHERE replace(replace(name, ' ', ''), '\u3000', '') = ? "
                             "AND birth_date = ?", [name.replace(" ", "").replace("\u3000", ""), q["birth_date"]])
            if "sex" in q:
                sql += " AND sex = ?"
                args.append(q["sex"])
            if "address" in q:
                sql += " AND address LIKE ? ESCAPE '\\'"
                args.append(q["address"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
            rows = self.db.execute(sql + " LIMIT 100", args).fetchall()
        cols = [c[0] for c in self.db.execute("SELECT * FROM persons LIMIT 0").description]
        out = []
        for r in rows:
            d = dict(zip(cols, r))
            d.pop("seion", None)
            if self.register != "juki":
                d.pop("kojin_bango", None)
            out.append(d)
        return out


def create_app(config: Config, register: str, store: NationalStore) -> FastAPI:
    title = "全国サーバ (模擬)" if register == "juki" else "附票全国サーバ (模擬)"
    app = FastAPI(title=f"jukinet {title}")
    ca = pki.load_cert(config.resolve(config.tls.ca_cert))
    app.state.store = store

    def _who(request: Request) -> Optional[str]:
        der = peer_certificate(request)
        if der is None:
            return None
        try:
            ident = pki.identity_of(der, ca, usage="client")
        except JukinetError:
            return None
        return ident.label if ident.kind == "prefecture" else None

    def _refuse(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})

    @app.post("/national/v1/updates")
    async def updates(request: Request):
        sender = _who(request)
        if sender is None:
            return _refuse(403, "NOT_A_PREFECTURE", "都道府県サーバの証明書が必要です。")
        try:
            body = decode(await request.body())
        except JukinetError as e:
            return _refuse(400, e.code, e.message)
        except ClientDisconnect:   # the prefectural server went away mid-request: nothing stored
            return _refuse(400, "CLIENT_DISCONNECTED", "送信元が切断しました。")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _refuse(400, "BATCH_FORMAT", "{\"messages\": [...]} の形式で送信してください。")

        return {"results": await run_in_threadpool(store.receive, sender, body["messages"])}

    @app.post("/national/v1/query")
    async def query(request: Request):
        if _who(request) is None:
            return _refuse(403, "NOT_A_PREFECTURE", "都道府県サーバの証明書が必要です。")
        try:
            results = store.query(decode(await request.body()))
        except JukinetError as e:
            return _refuse(400, e.code, e.message)
        return {"count": len(results), "results": results}

    @app.get("/national/v1/health")
    def health():
        n = store.db.execute("SELECT count(*) FROM received").fetchone()[0]
        p = store.db.execute("SELECT count(*) FROM persons").fetchone()[0]
        return {"status": "ok", "register": register, "received": n, "persons": p}

    return app


def start_national(config: Config, registers: tuple[str, ...] = ("juki", "fuhyo"), *,
                   synthetic: int = SYNTHETIC_PERSONS):
    """Start the national simulators in background threads; returns [(ServerThread, store)]."""
    tls = config.tls
    out = []
    for register in registers:
        store = NationalStore(db_path(config, register), register)
        if synthetic:
            store.ensure_synthetic(synthetic, prefecture_code=config.prefecture_code)
        cert, key = ((tls.national_cert, tls.national_key) if register == "juki"
                     else (tls.national_fuhyo_cert, tls.national_fuhyo_key))
        ctx = pki.server_context(config.resolve(cert), config.resolve(key), config.resolve(tls.ca_cert),
                                 client_cert="required")
        port = config.national.port if register == "juki" else config.national.fuhyo_port
        srv = make_server(create_app(config, register, store), config.national.host, port, ctx)
        out.append((ServerThread(srv).start(), store))
    return out


def dump(config: Config, register: Optional[str] = None) -> list[dict]:
    """What the national sims received, in order of receipt (merged by time when both)."""
    regs = [register] if register else ["juki", "fuhyo"]
    rows = []
    for reg in regs:
        p = db_path(config, reg)
        if not p.exists():
            continue
        s = NationalStore(p, reg)
        try:
            rows.extend(s.dump())
        finally:
            s.close()
    if len(regs) > 1:
        rows.sort(key=lambda d: (d["received_at"], d["register"], d["receipt_seq"]))
    return rows

