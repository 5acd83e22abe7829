"""The operation log on the operator UI (A4; ADR 0009): the latest entries of each chain the operator
may read, and verification of the hash chains."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request

from jukinet.security.oplog import recent, verify_all
from jukinet.web import auth as A
from jukinet.web.pages import ctx_post, render

router = APIRouter(include_in_schema=False)


# ---- operation log (A4) --------------------------------------------------------------------------

def _chains_for(op) -> list[str]:
    if "auditor" in op.roles:
        return ["juki", "fuhyo", "admin"]
    return [c for c in ("juki", "fuhyo") if op.can("oplog", c)]


def _witness(detail_text) -> str:
    try:
        return json.loads(detail_text or "{}").get("witness_id") or ""
    except ValueError:
        return ""


def _audit(request: Request, ctx: A.Ctx, reports=None):
    sec = A.security(request)
    links = request.app.state.installation.incidents

    def chain_rows(chain):
        with sec.registers.engine(chain).connect() as conn:
            rows = recent(conn, chain, limit=50)
        # G4: the incidents each entry is linked to (the way from the log to the incident; ADR 0041)
        return rows, links.incidents_of_entries(chain, [r.seq for r in rows])

    def log():
        with sec.registers.admin_tx() as conn:
            sec.oplog.append(conn, "admin", actor=ctx.actor, action="oplog_view", detail={"chains": ",".join(names)})

    names = _chains_for(ctx.operator)
    # each chain is in its own database: the registers' chains are read in threads side by side with the
    # admin chain and then the view's log entry here (issue 19, ADR 0052) — the listing never shows the
    # view's own entry; any failure, the log entry's included, fails the page
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="jukinet-audit") as ex:
        read = {chain: ex.submit(chain_rows, chain) for chain in names if chain != "admin"}
        got = {"admin": chain_rows("admin")} if "admin" in names else {}
        log()
        got.update({chain: f.result() for chain, f in read.items()})
    chains = [(chain, got[chain][0]) for chain in names]
    incidents = {chain: got[chain][1] for chain in names}
    return render(request, "audit.html", ctx, chains=chains, reports=reports, incidents=incidents, witness=_witness)


@router.get("/audit")
def audit(request: Request):
    ctx = A.context(request)
    A.security(request).require(ctx.operator, ctx.terminal_id, "oplog", "oplog_view")
    return _audit(request, ctx)


@router.post("/audit/verify")
async def audit_verify(request: Request):
    ctx, _ = await ctx_post(request)
    sec = A.security(request)
    sec.require(ctx.operator, ctx.terminal_id, "audit_verify", "audit_verify")
    reports = verify_all(sec.oplog, {c: sec.registers.engine(c) for c in ("juki", "fuhyo", "admin")})
    with sec.registers.admin_tx() as conn:
        sec.oplog.append(conn, "admin", actor=ctx.actor, action="audit_verify",
                         detail={"ok": all(r.ok for r in reports)})
    return _audit(request, ctx, reports)
