"""Requesters and affairs as data (P1; ADR 0018).

The catalogue says who may receive what, and on which legal basis: **requesters** (other executive
bodies — 提供, 住基法 別表第六 — and the governor's departments — 移転, 別表第五), **affairs** (事務:
code, name, source 別表第五/別表第六/条例, legal basis, register, the items it may receive, whether
番号法 allows the 個人番号) and **grants** (which requester may use which affair).

It ships as ``catalogue.toml`` next to this module (``jukinet init`` loads it), is reloaded from a
file by ``jukinet catalogue load FILE`` and edited on the admin screen. :func:`apply` compares the
wanted catalogue with what is stored and writes the difference in one transaction on the admin
database: each added, changed, retired or re-activated entry and each grant or revocation is a row
of ``provision_catalogue_changes`` (before/after) **and** an entry of the admin operation log. A
requester or affair missing from a loaded file is retired, never deleted: the provision record
refers to its code for 7 years.

>>> spec = parse(DEFAULT_PATH.read_bytes())
>>> len(spec.affairs) >= 20, spec.affairs["SOMU-KENZEI"].kojin_bango_allowed, spec.affairs["KOAN-UNTEN"].kojin_bango_allowed
(True, True, False)
>>> parse(b'format = "jukinet.provision-catalogue/1"\\n[[affairs]]\\ncode = "X"')
Traceback (most recent call last):
...
jukinet.errors.JukinetError: CATALOGUE_INVALID: カタログの内容が正しくありません (affairs X: items がありません)。
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from jukinet import text
from jukinet.errors import JukinetError
from jukinet.provision.items import ITEMS
from jukinet.security.oplog import Actor, OperationLog
from jukinet.store.tables_provision import (provision_affairs, provision_catalogue_changes, provision_grants,
                                            provision_requesters)
import tomli_w

FORMAT = "jukinet.provision-catalogue/1"
DEFAULT_PATH = Path(__file__).with_name("catalogue.toml")
SOURCES = {"別表第五": "department", "別表第六": "body", "条例": None}
KINDS = {"body": "他の執行機関 (提供)", "department": "他部署 (移転)"}
REGISTERS = ("juki", "fuhyo")
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,39}$")


def _invalid(where: str, field: str | None = None) -> JukinetError:
    """``field``: the item of the screen's form that is wrong (shown next to it; issue 19)."""
    return JukinetError("CATALOGUE_INVALID", f"カタログの内容が正しくありません ({where})。", field=field)


@dataclass(frozen=True)
class Requester:
    code: str
    name: str
    kind: str                    # body | department
    status: str = "active"

    @property
    def transfer(self) -> bool:
        """移転 (a department of the governor) rather than 提供 (another executive body)."""
        return self.kind == "department"

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)


@dataclass(frozen=True)
class Affair:
    code: str
    name: str
    source: str                  # 別表第五 | 別表第六 | 条例
    basis: str
    register: str                # juki | fuhyo
    items: tuple[str, ...]
    kojin_bango_allowed: bool = False
    kojin_bango_basis: Optional[str] = None
    status: str = "active"


@dataclass
class Spec:
    requesters: dict[str, Requester] = field(default_factory=dict)
    affairs: dict[str, Affair] = field(default_factory=dict)
    grants: set[tuple[str, str]] = field(default_factory=set)    # (requester, affair)
    version: str = ""

    def affairs_of(self, requester_code: str, *, active_only: bool = True) -> list[Affair]:
        return [a for (r, c) in sorted(self.grants) if r == requester_code
                for a in [self.affairs[c]] if not active_only or a.status == "active"]

    def requesters_of(self, affair_code: str) -> list[str]:
        return sorted(r for (r, a) in self.grants if a == affair_code)


# ------------------------------------------------------------------ validation

def _shown(code: str, i: int) -> str:
    """How a message names an entry: its code when well-formed, else its position (never a raw value)."""
    return code if _CODE.match(code) else f"#{i + 1}"


def _str(d: dict, key: str, where: str, *, maxlen: int = 400, required: bool = True) -> Optional[str]:
    v = d.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise _invalid(f"{where}: {key} がありません")
        return None
    if not isinstance(v, str) or len(v) > maxlen:
        raise _invalid(f"{where}: {key} の形式")
    return v.strip()


def validate_requester(r: Requester) -> Requester:
    where = f"requesters {r.code}"
    if not _CODE.match(r.code or "") or len(r.code) > 20:
        raise _invalid("requesters: code の形式", field="code")
    if not r.name or len(r.name) > 100:
        raise _invalid(f"{where}: name", field="name")
    if r.kind not in KINDS:
        raise _invalid(f"{where}: kind は body または department", field="kind")
    if r.status not in ("active", "retired"):
        raise _invalid(f"{where}: status")
    return r


def validate_affair(a: Affair) -> Affair:
    where = f"affairs {a.code}"
    if not _CODE.match(a.code or ""):
        raise _invalid("affairs: code の形式", field="code")
    if not a.name or len(a.name) > 200 or not a.basis or len(a.basis) > 400:
        raise _invalid(f"{where}: name / basis", field="name")
    if a.source not in SOURCES:
        raise _invalid(f"{where}: source は 別表第五・別表第六・条例 のいずれか", field="source")
    if a.register not in REGISTERS:
        raise _invalid(f"{where}: register は juki または fuhyo", field="register")
    if not a.items or len(set(a.items)) != len(a.items):
        raise _invalid(f"{where}: items", field="items")
    for i in a.items:
        if i not in ITEMS[a.register]:
            raise _invalid(f"{where}: items に {a.register} の項目でないもの ({i})")
    if "kojin_bango" in a.items and not a.kojin_bango_allowed:
        raise _invalid(f"{where}: 個人番号を提供できない事務の items に kojin_bango があります")
    if a.kojin_bango_allowed and not a.kojin_bango_basis:
        raise _invalid(f"{where}: 個人番号を提供する事務には kojin_bango_basis (番号法の根拠) が必要です", field="kojin_bango_basis")
    if a.status not in ("active", "retired"):
        raise _invalid(f"{where}: status")
    return a


def validate(spec: Spec) -> Spec:
    for r in spec.requesters.values():
        validate_requester(r)
    for a in spec.affairs.values():
        validate_affair(a)
    for rc, ac in spec.grants:
        if rc not in spec.requesters or ac not in spec.affairs:
            raise _invalid(f"affairs {ac}: requesters に未登録の {rc}")
        want = SOURCES[spec.affairs[ac].source]
        if want is not None and spec.requesters[rc].kind != want:
            raise _invalid(f"affairs {ac}: {spec.affairs[ac].source} の事務を {KINDS[spec.requesters[rc].kind]} に"
                           f"割り当てることはできません ({rc})")
    return spec


def parse(data: bytes) -> Spec:
    """Read a catalogue file (TOML, ``format = "jukinet.provision-catalogue/1"``) and validate it."""
    try:
        d = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise JukinetError("CATALOGUE_FORMAT", "カタログファイルを読み取れません (UTF-8 の TOML で作成してください)。") from None
    if text.find(d) is not None:   # Q2: e.g. "\u0000", which TOML allows and no database column can hold
        raise text.TextNotEncodable(text.CODE, text.message("カタログファイル"), field="file")
    if d.get("format") != FORMAT:
        raise JukinetError("CATALOGUE_FORMAT", f"カタログファイルの format は {FORMAT} としてください。")
    spec = Spec(version=str(d.get("version", "")))
    for i, r in enumerate(d.get("requesters", [])):
        if not isinstance(r, dict):
            raise _invalid(f"requesters #{i + 1}")
        code = _str(r, "code", f"requesters #{i + 1}", maxlen=20)
        where = f"requesters {_shown(code, i)}"
        if code in spec.requesters:
            raise _invalid(f"{where}: 重複")
        spec.requesters[code] = Requester(code, _str(r, "name", where, maxlen=100),
                                          _str(r, "kind", where, maxlen=12))
    for i, a in enumerate(d.get("affairs", [])):
        if not isinstance(a, dict):
            raise _invalid(f"affairs #{i + 1}")
        code = _str(a, "code", f"affairs #{i + 1}", maxlen=40)
        where = f"affairs {_shown(code, i)}"
        if code in spec.affairs:
            raise _invalid(f"{where}: 重複")
        items = a.get("items")
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise _invalid(f"{where}: items がありません")
        kb = a.get("kojin_bango", False)
        if not isinstance(kb, bool):
            raise _invalid(f"{where}: kojin_bango は true / false")
        spec.affairs[code] = Affair(code, _str(a, "name", where, maxlen=200), _str(a, "source", where, maxlen=8),
                                    _str(a, "basis", where), _str(a, "register", where, maxlen=5), tuple(items), kb,
                                    _str(a, "kojin_bango_basis", where, required=False))
        reqs = a.get("requesters", [])
        if not isinstance(reqs, list) or not all(isinstance(x, str) for x in reqs):
            raise _invalid(f"{where}: requesters")
        for rc in reqs:
            spec.grants.add((rc, code))
    return validate(spec)


def load_default() -> Spec:
    return parse(DEFAULT_PATH.read_bytes())


# ------------------------------------------------------------------ storage

def _utc(v):
    if v is not None and v.tzinfo is None:
        return v.replace(tzinfo=timezone.utc)
    return v


def read(conn: Connection) -> Spec:
    spec = Spec()
    for r in conn.execute(select(provision_requesters)):
        spec.requesters[r.code] = Requester(r.code, r.name, r.kind, r.status)
    for a in conn.execute(select(provision_affairs)):
        spec.affairs[a.code] = Affair(a.code, a.name, a.source, a.basis, a.register,
                                      tuple(x for x in a.items.split(",") if x), bool(a.kojin_bango_allowed),
                                      a.kojin_bango_basis, a.status)
    spec.grants = {(g.requester_code, g.affair_code) for g in conn.execute(select(provision_grants))}
    return spec


def snapshot(registers) -> Spec:
    with registers.admin_tx(write=False) as conn:
        return read(conn)


def _req_dict(r: Requester) -> dict:
    return {"name": r.name, "kind": r.kind, "status": r.status}


def _aff_dict(a: Affair) -> dict:
    d = asdict(a)
    d.pop("code")
    d["items"] = list(a.items)
    return d


@dataclass(frozen=True)
class Change:
    entity: str
    code: str
    action: str
    before: Optional[dict]
    after: Optional[dict]


def diff(old: Spec, new: Spec, *, retire_missing: bool = True) -> list[Change]:
    out: list[Change] = []
    for code, r in sorted(new.requesters.items()):
        o = old.requesters.get(code)
        if o is None:
            out.append(Change("requester", code, "add", None, _req_dict(r)))
        elif _req_dict(o) != _req_dict(r):
            act = "retire" if r.status == "retired" and o.status == "active" else "change"
            out.append(Change("requester", code, act, _req_dict(o), _req_dict(r)))
    for code, a in sorted(new.affairs.items()):
        o = old.affairs.get(code)
        if o is None:
            out.append(Change("affair", code, "add", None, _aff_dict(a)))
        elif _aff_dict(o) != _aff_dict(a):
            act = "retire" if a.status == "retired" and o.status == "active" else "change"
            out.append(Change("affair", code, act, _aff_dict(o), _aff_dict(a)))
    if retire_missing:
        for code, o in sorted(old.requesters.items()):
            if code not in new.requesters and o.status == "active":
                out.append(Change("requester", code, "retire", _req_dict(o), {**_req_dict(o), "status": "retired"}))
        for code, o in sorted(old.affairs.items()):
            if code not in new.affairs and o.status == "active":
                out.append(Change("affair", code, "retire", _aff_dict(o), {**_aff_dict(o), "status": "retired"}))
    for g in sorted(new.grants - old.grants):
        out.append(Change("grant", f"{g[0]}/{g[1]}", "grant", None, {"requester": g[0], "affair": g[1]}))
    for g in sorted(old.grants - new.grants):
        out.append(Change("grant", f"{g[0]}/{g[1]}", "revoke", {"requester": g[0], "affair": g[1]}, None))
    return out


def apply(registers, oplog: OperationLog, wanted: Spec, *, actor: Actor, via: str, source_sha256: str | None = None,
          retire_missing: bool = True, now: datetime | None = None) -> list[Change]:
    """Make the stored catalogue equal to ``wanted`` (validated); log and return every change."""
    now = now or datetime.now(timezone.utc)
    with registers.admin_tx() as conn:
        old = read(conn)
        merged = Spec(dict(old.requesters), dict(old.affairs), set(wanted.grants), wanted.version)
        merged.requesters.update(wanted.requesters)
        merged.affairs.update(wanted.affairs)
        if retire_missing:
            for c, r in old.requesters.items():
                if c not in wanted.requesters:
                    merged.requesters[c] = replace(r, status="retired")
            for c, a in old.affairs.items():
                if c not in wanted.affairs:
                    merged.affairs[c] = replace(a, status="retired")
        validate(merged)
        changes = diff(old, merged, retire_missing=False)
        for ch in changes:
            _write(conn, ch, merged, actor, now)
            conn.execute(insert(provision_catalogue_changes).values(
                at=now, operator_id=actor.operator_id, terminal_id=actor.terminal_id, via=via,
                source_sha256=source_sha256, entity=ch.entity, code=ch.code, action=ch.action,
                before=json.dumps(ch.before, ensure_ascii=False, sort_keys=True) if ch.before is not None else None,
                after=json.dumps(ch.after, ensure_ascii=False, sort_keys=True) if ch.after is not None else None))
            fields = sorted(k for k in set(ch.before or {}) | set(ch.after or {})
                            if (ch.before or {}).get(k) != (ch.after or {}).get(k))
            oplog.append(conn, "admin", actor=actor, action="catalogue_change", now=now,
                         detail={"entity": ch.entity, "code": ch.code, "change": ch.action, "fields": fields,
                                 "via": via, **({"source_sha256": source_sha256} if source_sha256 else {})})
        return changes


def _write(conn: Connection, ch: Change, spec: Spec, actor: Actor, now: datetime) -> None:
    if ch.entity == "requester":
        r = spec.requesters[ch.code]
        values = dict(name=r.name, kind=r.kind, status=r.status, updated_at=now, updated_by=actor.operator_id)
        if ch.action == "add":
            conn.execute(insert(provision_requesters).values(code=r.code, **values))
        else:
            conn.execute(update(provision_requesters).where(provision_requesters.c.code == r.code).values(**values))
    elif ch.entity == "affair":
        a = spec.affairs[ch.code]
        values = dict(name=a.name, source=a.source, basis=a.basis, register=a.register, items=",".join(a.items),
                      kojin_bango_allowed=a.kojin_bango_allowed, kojin_bango_basis=a.kojin_bango_basis,
                      status=a.status, updated_at=now, updated_by=actor.operator_id)
        if ch.action == "add":
            conn.execute(insert(provision_affairs).values(code=a.code, **values))
        else:
            conn.execute(update(provision_affairs).where(provision_affairs.c.code == a.code).values(**values))
    else:
        rc, ac = ch.code.split("/", 1)
        if ch.action == "grant":
            conn.execute(insert(provision_grants).values(requester_code=rc, affair_code=ac, granted_at=now,
                                                         granted_by=actor.operator_id))
        else:
            conn.execute(delete(provision_grants).where(provision_grants.c.requester_code == rc,
                                                        provision_grants.c.affair_code == ac))


def load_file(registers, oplog: OperationLog, data: bytes, *, actor: Actor, via: str = "file") -> list[Change]:
    """Replace the catalogue by a file's content (missing entries are retired)."""
    spec = parse(data)
    return apply(registers, oplog, spec, actor=actor, via=via, source_sha256=hashlib.sha256(data).hexdigest())


def ensure_default(registers, oplog: OperationLog, *, actor: Actor = Actor("init", None)) -> list[Change]:
    """Load the shipped catalogue when the installation has none yet (``jukinet init``)."""
    with registers.admin_tx(write=False) as conn:
        if conn.execute(select(provision_affairs.c.code).limit(1)).first() is not None:
            return []
    return load_file(registers, oplog, DEFAULT_PATH.read_bytes(), actor=actor, via="init")


def edit(registers, oplog: OperationLog, *, actor: Actor, via: str = "screen", requester: Requester | None = None,
         affair: Affair | None = None, grants: Optional[dict[str, bool]] = None,
         affair_code_for_grants: str | None = None) -> list[Change]:
    """One edit from the admin screen: add/change a requester or an affair, and/or set the grants of an affair
    (``{requester_code: granted}``). Validated like a file; logged like a file load."""
    with registers.admin_tx(write=False) as conn:
        cur = read(conn)
    new = Spec(dict(cur.requesters), dict(cur.affairs), set(cur.grants), cur.version)
    if requester is not None:
        new.requesters[requester.code] = validate_requester(requester)
    if affair is not None:
        new.affairs[affair.code] = validate_affair(affair)
    if grants is not None:
        ac = affair_code_for_grants or (affair.code if affair else None)
        if ac not in new.affairs:
            raise _invalid("事務が未登録です")
        for rc, on in grants.items():
            if on:
                new.grants.add((rc, ac))
            else:
                new.grants.discard((rc, ac))
    return apply(registers, oplog, new, actor=actor, via=via, retire_missing=False)


def history(registers, *, limit: int = 100) -> list[dict]:
    t = provision_catalogue_changes
    with registers.admin_tx(write=False) as conn:
        rows = conn.execute(select(t).order_by(t.c.change_id.desc()).limit(limit)).all()
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["at"] = _utc(d["at"])
        out.append(d)
    return out


def to_toml(spec: Spec) -> str:
    """The stored catalogue as a file (for download and editing; loading it back changes nothing)."""
    doc = {"format": FORMAT, "version": spec.version or datetime.now(timezone.utc).date().isoformat(),
           "requesters": [{"code": r.code, "name": r.name, "kind": r.kind}
                          for r in sorted(spec.requesters.values(), key=lambda r: r.code) if r.status == "active"],
           "affairs": []}
    for a in sorted(spec.affairs.values(), key=lambda a: a.code):
        if a.status != "active":
            continue
        d = {"code": a.code, "name": a.name, "source": a.source, "basis": a.basis, "register": a.register,
             "items": list(a.items), "kojin_bango": a.kojin_bango_allowed}
        if a.kojin_bango_basis:
            d["kojin_bango_basis"] = a.kojin_bango_basis
        d["requesters"] = [rc for rc in spec.requesters_of(a.code) if spec.requesters[rc].status == "active"]
        doc["affairs"].append(d)
    return tomli_w.dumps(doc)
