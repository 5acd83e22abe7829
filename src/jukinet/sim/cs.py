"""Simulator of a municipality's communication server (市町村CS): ``jukinet sim cs``.

It talks to the prefectural server exactly as a CS does: HTTPS with mutual TLS, presenting the
municipality's client certificate (``pki/cs/{code}.pem``), POSTing ``jukinet.notification/1`` to
``/cs/v1/notifications`` (or ``/cs/v1/notifications:batch``).

Generated changes (``--events N``) are drawn against the register as it is: the simulator reads
the current residents of its municipality from the juki database and the 附票 records it manages
from the fuhyo database (read-only), keeps its own picture of them up to date as it generates,
and so produces changes that the reason tables accept (a moved-out person gets no further
change). Codes of new persons are random digits with the check digits of :mod:`jukinet.codes`.

Rates (per 1,000 persons of the register per year; roughly Japan's, 2023: 人口動態統計, 住民基本台帳
人口移動報告). The mix of a stream follows them, so a stream of N events looks like a slice of a
municipality's year:

=================  ======  ==================================================================
juki reason         rate    note
=================  ======  ==================================================================
転居                 25.0    move within the municipality (new address and 大字・字コード)
国内転入             22.0    a new person from elsewhere in Japan (new codes)
国内転出             22.0
死亡                 12.5
出生                  6.0    birth_date = change_date
職権修正              4.0    new surname (marriage, divorce)
国外転入              1.5
国外転出              1.3
軽微な修正            1.0    住居表示 / 町名変更: the address text changes
旧氏記載              0.3
旧氏削除              0.05
旧氏変更              0.02
個人番号変更          0.05
=================  ======  ==================================================================

=================  ======  ==================================================================
fuhyo reason        rate    (records whose 附票管理市町村 is this municipality)
=================  ======  ==================================================================
住所変更             45.0    the person moved (anywhere in Japan)
消除                 14.0    death, or the 本籍 left the municipality
記載                  8.0    birth, or a 本籍 came in
職権修正              4.0    new surname
国外転出              1.3    no domestic address; 最終住所 = the last one
=================  ======  ==================================================================
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator, Optional

import httpx
from sqlalchemy import select

from jukinet import geo, pki, text
from jukinet.config import Config
from jukinet.errors import JukinetError
from jukinet.geo import random_address
from jukinet.intake.service import today_jst
from jukinet.intake.wire import SCHEMA
from jukinet.sim import synthetic as syn
from jukinet.store import faults
from jukinet.store.registers import Registers
from jukinet.store.tables import fuhyo_current, juki_current

JUKI_RATES = {"転居": 25.0, "国内転入": 22.0, "国内転出": 22.0, "死亡": 12.5, "出生": 6.0, "職権修正": 4.0,
              "国外転入": 1.5, "国外転出": 1.3, "軽微な修正": 1.0, "旧氏記載": 0.3, "旧氏削除": 0.05,
              "旧氏変更": 0.02, "個人番号変更": 0.05}
FUHYO_RATES = {"住所変更": 45.0, "消除": 14.0, "記載": 8.0, "職権修正": 4.0, "国外転出": 1.3}


#: answers a CS resends unchanged: the prefectural server could not take the request now (a database
#: failover, no valid CRL); nothing was acknowledged, and a resend is answered ``duplicate`` if the
#: first attempt was applied after all (ADR 0037). A 500 is a fault and is not resent.
RETRY_STATUSES = frozenset({502, 503, 504})


def _error_code(r: httpx.Response) -> Optional[str]:
    """The ``error.code`` of a coded JSON answer (None for anything else)."""
    try:
        return (r.json().get("error") or {}).get("code")
    except (ValueError, AttributeError):
        return None


def _retry_after(r: httpx.Response) -> float:
    """The server's ``Retry-After`` in seconds (0 when absent, 1 when not a number)."""
    after = r.headers.get("retry-after")
    if after is None:
        return 0.0
    try:
        return float(after)
    except ValueError:
        return 1.0


class CsClient:
    """One municipality's CS talking to the prefectural server over mutual TLS.

    ``retry_for`` > 0: a request that fails in transport or is answered 502/503/504 is resent (the
    same body) with exponential backoff (``retry_initial`` doubling up to ``retry_max`` seconds) for
    up to ``retry_for`` seconds; ``retries`` counts the resends, ``retried_requests`` the requests
    that needed one. 0 (the default): one attempt, the answer as it is.
    """

    def __init__(self, config: Config, code: str, *, base_url: Optional[str] = None,
                 cert: Optional[tuple[Path, Path]] = None, timeout: float = 60.0,
                 retry_for: float = 0.0, retry_initial: float = 0.1, retry_max: float = 2.0,
                 server_ca: Optional[Path] = None):
        """``server_ca``: the CA of the server's certificate when it is not the prefecture's own
        (a consolidated center shows its own server certificate, ADR 0036)."""
        tls = config.tls
        cert = cert or pki.cs_paths(config.resolve(tls.cs_dir), code)
        ctx = pki.client_context(cert[0], cert[1], server_ca or config.resolve(tls.ca_cert))
        self.code = code
        self.base_url = base_url or f"https://{config.server.host}:{config.server.port}"
        self.http = httpx.Client(base_url=self.base_url, verify=ctx, timeout=timeout)
        self.retry_for, self.retry_initial, self.retry_max = retry_for, retry_initial, retry_max
        self.retries = 0
        self.retried_requests = 0

    #: a 503 with ``Retry-After`` (``STORAGE_UNAVAILABLE``: a full disk, a read-only database; nothing
    #: was applied) is sent again, as a real CS does, up to this many times, waiting ``Retry-After``
    #: but at most ``retry_cap`` seconds (ADR 0038)
    retries_503: int = 5
    retry_cap: float = 10.0

    def post(self, path: str, body: bytes) -> httpx.Response:
        if self.retry_for <= 0:
            return self._post_honouring_retry_after(path, body)
        deadline = time.monotonic() + self.retry_for
        delay, first = self.retry_initial, True
        while True:
            wait = delay
            try:
                r = self.http.post(path, content=body, headers={"content-type": "application/json"})
                if r.status_code not in RETRY_STATUSES:
                    return r
                wait = max(delay, min(_retry_after(r), self.retry_cap))
                if time.monotonic() + wait > deadline:
                    return r
            except httpx.TransportError:
                if time.monotonic() + delay > deadline:
                    raise
            self.retries += 1
            if first:
                self.retried_requests += 1
                first = False
            time.sleep(wait)
            delay = min(delay * 2, self.retry_max)

    def _post_honouring_retry_after(self, path: str, body: bytes) -> httpx.Response:
        """Without ``retry_for``: only a 503 ``STORAGE_UNAVAILABLE`` that says ``Retry-After`` (a full or
        read-only store: nothing was written) is sent again, ``retries_503`` times; any other answer —
        a lost database connection included — is returned as it is (``retry_for`` resends those)."""
        for attempt in range(self.retries_503 + 1):
            r = self.http.post(path, content=body, headers={"content-type": "application/json"})
            if r.status_code != 503 or r.headers.get("retry-after") is None or attempt == self.retries_503 \
                    or _error_code(r) != faults.CODE:
                return r
            self.retries += 1
            time.sleep(max(0.0, min(_retry_after(r), self.retry_cap)))
        return r

    def send(self, notification) -> dict:
        """Send one notification (a dict, or raw bytes as read); return the answer line."""
        body = notification if isinstance(notification, bytes) else json.dumps(notification, ensure_ascii=False).encode()
        nid = notification.get("notification_id") if isinstance(notification, dict) else None
        r = self.post("/cs/v1/notifications", body)
        return _answer_line(nid, r)

    def send_batch(self, notifications: list[dict]) -> list[dict]:
        body = json.dumps({"notifications": notifications}, ensure_ascii=False).encode()
        r = self.post("/cs/v1/notifications:batch", body)
        if r.status_code == 200:
            return [{"notification_id": a.get("notification_id"), "status": a.get("status"), "error": a.get("error")}
                    for a in r.json()["results"]]
        err = _error_of(r)
        return [{"notification_id": n.get("notification_id") if isinstance(n, dict) else None, "status": "rejected",
                 "error": err} for n in notifications]

    # --- 通報 from the prefecture (O5; ADR 0039) --------------------------------------------------

    def fetch_reports(self) -> list[dict]:
        """The 通報 the prefecture holds for this municipality (handed over again until acknowledged)."""
        r = self.http.get("/cs/v1/reports")
        if r.status_code != 200:
            err = _error_of(r)
            raise JukinetError(err.get("code") or f"HTTP_{r.status_code}", err.get("message") or "")
        return r.json()["reports"]

    def ack_reports(self, report_ids: list[str]) -> list[dict]:
        body = json.dumps({"report_ids": list(report_ids)}).encode()
        r = self.http.post("/cs/v1/reports/ack", content=body, headers={"content-type": "application/json"})
        if r.status_code != 200:
            err = _error_of(r)
            return [{"report_id": i, "status": "rejected", "error": err} for i in report_ids]
        return r.json()["results"]

    def close(self) -> None:
        self.http.close()


class ReportInbox:
    """What a simulated CS received as 通報: ``DIR/sim/cs-reports/{code}.jsonl``, one report a line,
    deduplicated by ``report_id`` (the prefecture hands a 通報 over again until it is acknowledged)."""

    def __init__(self, config: Config, code: str):
        self.path = config.data_dir / "sim" / "cs-reports" / f"{code}.jsonl"

    def ids(self) -> set[str]:
        if not self.path.exists():
            return set()
        return {json.loads(line)["report_id"] for line in self.path.read_text(encoding="utf-8").splitlines() if line}

    def reports(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]

    def store(self, report: dict) -> bool:
        """Keep a 通報 (before acknowledging it); False when it was already kept."""
        if report.get("report_id") in self.ids():
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(report, ensure_ascii=False, sort_keys=True) + "\n")
            f.flush()
        return True


def receive_reports(client: CsClient, inbox: ReportInbox, *, ack: bool = True) -> list[dict]:
    """One poll of the CS: take the 通報, keep each, acknowledge them; one line per 通報
    ``{"report_id", "received": "new"|"again", "ack": "acknowledged"|"duplicate"|"rejected"|None}``."""
    lines = []
    for rep in client.fetch_reports():
        lines.append({"report_id": rep.get("report_id"), "received": "new" if inbox.store(rep) else "again",
                      "ack": None})
    if ack and lines:
        answers = {a.get("report_id"): a for a in client.ack_reports([l["report_id"] for l in lines])}
        for line in lines:
            line["ack"] = (answers.get(line["report_id"]) or {}).get("status")
    return lines


def _error_of(r: httpx.Response) -> dict:
    try:
        d = r.json()
        return d.get("error") or {"code": f"HTTP_{r.status_code}", "message": "応答を解釈できません。"}
    except Exception:  # noqa: BLE001
        return {"code": f"HTTP_{r.status_code}", "message": "応答を解釈できません。"}


def _answer_line(nid: Optional[str], r: httpx.Response) -> dict:
    try:
        d = r.json()
    except Exception:  # noqa: BLE001
        d = {}
    if "status" in d:
        return {"notification_id": d.get("notification_id", nid), "status": d["status"], "error": d.get("error")}
    return {"notification_id": nid, "status": "rejected", "error": _error_of(r)}


def read_jsonl(path: Path) -> Iterator[bytes | dict]:
    """Each non-empty line: the decoded object, or the raw bytes when it is not JSON (sent as is).

    A line whose text no encoder takes (a JSON ``\\ud800`` escape decodes to a lone surrogate) is
    also sent as the raw bytes it was written as: the server judges it (``TEXT_NOT_ENCODABLE``), the
    simulator does not crash re-encoding it. An unreadable file is :class:`JukinetError`
    ``FILE_UNREADABLE``."""
    try:
        f = open(path, "rb")
    except OSError:
        raise JukinetError("FILE_UNREADABLE", "送信ファイルを読み取れません (権限・種類を確認してください)。") from None
    with f:
        for line in _lines(f):
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                yield line
                continue
            yield line if text.find(obj, test=text.is_encodable) is not None else obj


def _lines(f) -> Iterator[bytes]:
    for raw in f:
        line = raw.strip()
        if line:
            yield line


# --- generated streams --------------------------------------------------------------------------

def _iso(d) -> Optional[str]:
    return d.isoformat() if hasattr(d, "isoformat") else d


@dataclass
class EventGenerator:
    """A realistic stream of changes for one municipality's residents (see the module docstring)."""

    code: str
    juki: dict = field(default_factory=dict)      # juminhyo_code -> wire record (current residents)
    fuhyo: dict = field(default_factory=dict)     # juminhyo_code -> wire record (現存, managed here)
    seed: Optional[int] = None
    run_id: Optional[str] = None
    today: Optional[date] = None
    fuhyo_share: float = 0.25

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        self.run_id = self.run_id or _run_id()
        self.today = self.today or today_jst()
        self.n = 0
        self.municipality = geo.by_code(self.code)
        self.prefecture = geo.prefecture(self.municipality.prefecture_code)   # the CS's own prefecture
        self._home = self.prefecture.municipalities
        self._elsewhere = geo.elsewhere(self.prefecture)
        self._juki_keys = list(self.juki)
        self._fuhyo_keys = list(self.fuhyo)
        self.used_codes: set[str] = set(self.juki) | set(self.fuhyo)

    @classmethod
    def from_registers(cls, registers: Registers, code: str, **kw) -> "EventGenerator":
        juki, fuhyo = {}, {}
        with registers.engine("juki").connect() as conn:
            cipher = registers.kojin_bango_cipher          # D1 holds the 個人番号 sealed (ADR 0025)
            for r in conn.execute(select(juki_current).where(juki_current.c.municipality_code == code,
                                                             juki_current.c.deleted.is_(False))):
                fs = ({"name": r.former_surname, "name_kana": r.former_surname_kana}
                      if r.former_surname is not None else None)
                juki[r.juminhyo_code] = {"name": r.name, "name_kana": r.name_kana, "birth_date": _iso(r.birth_date),
                                         "sex": r.sex, "address": r.address, "oaza_code": r.oaza_code,
                                         "kojin_bango": cipher.open_value(r._mapping), "former_surname": fs}
        with registers.engine("fuhyo").connect() as conn:
            for r in conn.execute(select(fuhyo_current).where(fuhyo_current.c.fuhyo_municipality_code == code,
                                                              fuhyo_current.c.status == "現存")):
                fuhyo[r.juminhyo_code] = {
                    "name": r.name, "name_kana": r.name_kana, "birth_date": _iso(r.birth_date), "sex": r.sex,
                    "address_municipality_code": r.address_municipality_code, "address": r.address,
                    "last_address": r.last_address, "old_juminhyo_code": r.old_juminhyo_code,
                    "fuhyo_municipality_code": r.fuhyo_municipality_code, "status": r.status}
        return cls(code, juki, fuhyo, **kw)

    # --- helpers ------------------------------------------------------------------------------

    def _nid(self) -> str:
        self.n += 1
        return f"{self.code}-{self.run_id}-{self.n:07d}"

    def _new_code(self) -> str:
        while True:
            c = syn.new_juminhyo_code(self.rng)
            if c not in self.used_codes:
                self.used_codes.add(c)
                return c

    def _pick(self, register: str, pred=None) -> Optional[str]:
        keys = self._juki_keys if register == "juki" else self._fuhyo_keys
        pool = self.juki if register == "juki" else self.fuhyo
        for _ in range(40):
            if not keys:
                return None
            i = self.rng.randrange(len(keys))
            k = keys[i]
            if k not in pool:   # removed earlier: drop lazily
                keys[i] = keys[-1]
                keys.pop()
                continue
            if pred is None or pred(pool[k]):
                return k
        return None

    def _change_date(self, birth: str) -> str:
        d = self.today - timedelta(days=self.rng.randrange(0, 4))
        return max(d, date.fromisoformat(birth)).isoformat()

    def _note(self, register, reason, code, record, new_code=None, change_date=None) -> dict:
        return {"schema": SCHEMA, "notification_id": self._nid(), "register": register,
                "municipality_code": self.code, "reason": reason,
                "change_date": change_date or self._change_date(record["birth_date"]),
                "juminhyo_code": code, "new_juminhyo_code": new_code, "record": dict(record)}

    def _new_person(self, min_age: int, max_age: int) -> dict:
        sex = self.rng.choice("12")
        birth = syn.random_birth(self.rng, self.today, min_age, max_age)
        name, kana = syn.full_name(syn.surname(self.rng), syn.given(self.rng, sex, birth.year))
        address, oaza = random_address(self.rng, self.municipality)
        return {"name": name, "name_kana": kana, "birth_date": birth.isoformat(), "sex": sex, "address": address,
                "oaza_code": oaza, "kojin_bango": syn.new_kojin_bango(self.rng), "former_surname": None}

    def _renamed(self, rec: dict) -> dict:
        sur = syn.surname(self.rng)
        given_k = rec["name"].split("\u3000")[-1] if "\u3000" in rec["name"] else rec["name"][-2:]
        given_r = rec["name_kana"].split("\u3000")[-1]
        return dict(rec, name=f"{sur[0]}\u3000{given_k}", name_kana=f"{sur[1]}\u3000{given_r}")

    # --- one event ----------------------------------------------------------------------------

    def next(self) -> dict:
        for _ in range(50):
            use_fuhyo = self.rng.random() < self.fuhyo_share
            if use_fuhyo:
                reason = self.rng.choices(list(FUHYO_RATES), list(FUHYO_RATES.values()))[0]
                n = self._fuhyo_event(reason)
            else:
                reason = self.rng.choices(list(JUKI_RATES), list(JUKI_RATES.values()))[0]
                n = self._juki_event(reason)
            if n is not None:
                return n
        # an empty municipality: somebody moves in
        return self._juki_event("国内転入")

    def take(self, n: int) -> list[dict]:
        return [self.next() for _ in range(n)]

    def _juki_event(self, reason: str) -> Optional[dict]:
        if reason in ("国内転入", "国外転入", "出生"):
            if reason == "出生":
                rec = self._new_person(0, 0)
                birth = (self.today - timedelta(days=self.rng.randrange(0, 14))).isoformat()
                rec.update(birth_date=birth)
                change = birth
            else:
                rec = self._new_person(0, 90)
                change = None
            code = self._new_code()
            n = self._note("juki", reason, code, rec, change_date=change)
            self.juki[code] = rec
            self._juki_keys.append(code)
            return n
        if reason == "旧氏記載":
            code = self._pick("juki", lambda r: r["former_surname"] is None)
        elif reason in ("旧氏削除", "旧氏変更"):
            code = self._pick("juki", lambda r: r["former_surname"] is not None)
        else:
            code = self._pick("juki")
        if code is None:
            return None
        rec = self.juki[code]
        if reason in ("国内転出", "国外転出", "死亡"):
            del self.juki[code]
            return self._note("juki", reason, code, rec)
        if reason in ("転居", "軽微な修正"):
            address, oaza = random_address(self.rng, self.municipality)
            if address == rec["address"]:
                return None
            new = dict(rec, address=address, oaza_code=oaza)
        elif reason == "職権修正":
            new = self._renamed(rec)
            if new["name"] == rec["name"]:
                return None
        elif reason == "個人番号変更":
            new = dict(rec, kojin_bango=syn.new_kojin_bango(self.rng))
        elif reason == "旧氏記載":
            sur = rec["name"].split("\u3000")[0]
            sur_k = rec["name_kana"].split("\u3000")[0]
            new = dict(rec, former_surname={"name": sur, "name_kana": sur_k})
        elif reason == "旧氏変更":
            s = syn.surname(self.rng)
            if s[0] == rec["former_surname"]["name"]:
                return None
            new = dict(rec, former_surname={"name": s[0], "name_kana": s[1]})
        elif reason == "旧氏削除":
            new = dict(rec, former_surname=None)
        else:  # pragma: no cover
            return None
        self.juki[code] = new
        return self._note("juki", reason, code, new)

    def _fuhyo_event(self, reason: str) -> Optional[dict]:
        if reason == "記載":
            sex = self.rng.choice("12")
            birth = syn.random_birth(self.rng, self.today, 0, 80)
            name, kana = syn.full_name(syn.surname(self.rng), syn.given(self.rng, sex, birth.year))
            m = self._somewhere()
            address, _ = random_address(self.rng, m)
            rec = {"name": name, "name_kana": kana, "birth_date": birth.isoformat(), "sex": sex,
                   "address_municipality_code": m.code, "address": address, "last_address": None,
                   "old_juminhyo_code": None, "fuhyo_municipality_code": self.code, "status": "現存"}
            code = self._new_code()
            self.fuhyo[code] = rec
            self._fuhyo_keys.append(code)
            return self._note("fuhyo", reason, code, rec)
        if reason == "国外転出":
            code = self._pick("fuhyo", lambda r: r["address"] is not None)
        else:
            code = self._pick("fuhyo")
        if code is None:
            return None
        rec = self.fuhyo[code]
        if reason == "消除":
            del self.fuhyo[code]
            return self._note("fuhyo", reason, code, dict(rec, status="消除"))
        if reason == "住所変更":
            m = self._somewhere()
            address, _ = random_address(self.rng, m)
            new = dict(rec, address_municipality_code=m.code, address=address, last_address=None)
        elif reason == "国外転出":
            new = dict(rec, address_municipality_code=None, address=None, last_address=rec["address"])
        elif reason == "職権修正":
            new = self._renamed(rec)
            if new["name"] == rec["name"]:
                return None
        else:  # pragma: no cover
            return None
        if new == rec:
            return None
        self.fuhyo[code] = new
        return self._note("fuhyo", reason, code, new)

    def _somewhere(self):
        if self.rng.random() < 0.75:
            return self.rng.choices(self._home, [m.weight for m in self._home])[0]
        return self.rng.choices(self._elsewhere, [m.weight for m in self._elsewhere])[0]


def _run_id() -> str:
    """A run id that makes notification ids unique across runs of one CS (base-36 milliseconds)."""
    n = int(time.time() * 1000)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out
