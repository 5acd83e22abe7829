"""The consolidated center's server process (issue 14, Q1; ADR 0036): ONE HTTPS server with mutual
TLS in front of N tenants, each the ordinary application of its own installation.

A door beside :mod:`jukinet.server`: it opens every tenant through the composition root
(:func:`jukinet.center.tenants.open_tenants`), builds each tenant's ``create_app(inst)``, intake and
outbox worker, and serves :class:`CenterApp`, an ASGI router that chooses the tenant of a request
from what the TLS layer or the tenant's own database vouches for — never from the URL, a header
naming a prefecture, or the body:

* **a client certificate** (a 市町村CS): the 全国地方公共団体コード in the verified certificate → its
  prefecture (:func:`jukinet.center.tenants.prefecture_of`). The tenant's own application then
  checks the certificate again against *that tenant's* CA and the body against the certificate, so a
  certificate issued by another tenant's CA is refused there too. No hosted prefecture →
  ``TENANT_UNKNOWN`` (403), in the center log;
* **no certificate** (operators): the terminal cookie (``jukinet_terminal``; the header
  ``X-Jukinet-Terminal`` on ``/api/``) is looked up in each tenant's terminal table; exactly one
  must know it. Terminal activation is routed by the activation code (a secret only its tenant
  knows). An unknown terminal gets ``TERMINAL_UNREGISTERED`` from the center (logged in the center
  log: it belongs to no tenant). Static files and the empty activation form come from the first
  tenant (no data);
* ``/center/ops`` and ``/center/api/status``: the center operations view (loopback only), no
  personal data; ``/health``: every tenant's health in one answer.

``jukinet center serve`` also runs each tenant's daily jobs (:class:`jukinet.scheduler.OpsScheduler`:
retention, backup under the tenant's own key, monthly access-log analysis, checkpoints of its own
chains) and its outbox worker, one set of threads per tenant (ADR 0045). A tenant whose worker or
scheduler fails to start is written to the center log by code and shown on the operations view;
the other tenants keep running.

**Connections** (ADR 0055): the tenants' PostgreSQL engines share one
:class:`jukinet.store.connpool.ConnectionGovernor` — idle connections are closed after
``pg_idle_seconds`` and at most ``pg_connections`` are open to one cluster — and an idle tenant's
outbox worker looks only every ``outbox_poll_seconds`` (a commit wakes it at once); the backups and
monthly analyses of all tenants run one at a time.

**Pausing a tenant** (a live ``center move``, ADR 0055): ``POST /center/api/tenants/NN/pause`` and
``…/resume`` from loopback with the control token (``CENTER/pki/control.token``). While paused, that
tenant's doors answer 503 ``TENANT_MOVING`` with ``Retry-After`` (a CS resends), its requests in
flight have finished and its worker, CRL watcher and scheduler are stopped; resume opens the tenant
again from its ``jukinet.toml`` — the new database when the move switched it — and swaps it in. The
other tenants are not touched.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import html
import logging
import re
import ssl
import threading
import time
from collections import OrderedDict
from contextlib import AsyncExitStack, ExitStack, contextmanager
from typing import Optional
from urllib.parse import parse_qs

import orjson
from cryptography import x509
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from jukinet import pki
from jukinet.bootstrap import Installation
from jukinet.center.registry import Center
from jukinet.center.refusals import record_refusal
from jukinet.center.status import center_status
from jukinet.center.tenants import open_tenant, open_tenants, prefecture_of
from jukinet.intake import transport
from jukinet.observability import metrics
from jukinet.pki.certs import parse_identity_uri
from jukinet.security.oplog import Actor
from jukinet.pki.crl import RevocationChecker
from jukinet.scheduler import OpsScheduler
from jukinet.security.service import sha256
from jukinet.store.connpool import ConnectionGovernor
from jukinet.store.seed_state import require_seed_complete
from jukinet.store.tables_security import terminals
from jukinet.web import auth as A
from jukinet.web.app import create_app
from jukinet.web.transport_security import delete_cookie

log = logging.getLogger("jukinet.center")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
#: served by the first tenant for a browser that is not (yet) a terminal: no data behind them
RECEPTION_PREFIXES = ("/static/", "/fonts/", "/favicon")
CS_PREFIXES = ("/cs/", "/reconcile/")
#: the CS requests whose body names the municipality whose files it changes (read by the router, ADR 0053)
NOTIFY_PATHS = ("/cs/v1/notifications", "/cs/v1/notifications:batch")
#: the intake's own limit for a batch (jukinet.intake.api.MAX_BATCH_BYTES): larger bodies go to the tenant unread
MAX_INSPECT_BYTES = 8 * 1024 * 1024
TENANT_MISMATCH_CS = ("この市町村CSの証明書の都道府県とは別の都道府県の市町村が指定されています。"
                      "他の都道府県の情報には送信できません (何も変更していません)。")
TENANT_MISMATCH_SESSION = "このセッションは、この操作端末の都道府県のものではありません。ログインし直してください。"
TERMINAL_UNREGISTERED_MSG = "この端末は操作端末として登録されていません。システム管理者に端末登録を依頼してください。"
OPS_FORBIDDEN_MSG = "集約センターの運用画面は運用端末 (ループバック) からのみ表示できます。"
SESSION_CACHE = 4096
TENANT_UNKNOWN_MSG = "この証明書の市町村が属する都道府県は、この集約センターに収容されていません。"
CONTROL_PATH = re.compile(r"^/center/api/tenants/(\d{2})/(pause|resume)$")
CONTROL_HEADER = "x-jukinet-center-control"
#: seconds a tenant stays paused when the mover never resumes it (it died): then it is resumed from
#: whatever its jukinet.toml names — the source, or the verified copy if the switch was made
DEFAULT_LEASE = 600.0
MOVING_MESSAGE = "この都道府県のデータベースを移行中です。しばらくしてから同じ要求を再送してください。"


class TenantRuntime:
    """One tenant inside the center: its application, intake and outbox worker (as in
    :class:`jukinet.server.PrefectureServer`, without a listening socket of its own)."""

    def __init__(self, inst: Installation, *, outbox: Optional[bool] = None, outbox_poll: Optional[float] = None):
        self.installation = inst
        #: requests of this tenant being served now, and whether new ones are turned away (a live move)
        self.inflight = 0
        self.paused = False
        config = inst.config
        #: this tenant's event counters: its /metrics counts its own requests, notifications, refusals only
        self.events = metrics.Events()
        self.app = create_app(inst)
        run_outbox = config.intake.outbox_worker if outbox is None else outbox
        self.worker = inst.outbox_worker() if run_outbox else None
        if self.worker is not None and outbox_poll is not None:
            self.worker.poll = outbox_poll
        self.app.state.outbox_wake = self.worker.wake if self.worker else None
        self.app.state.intake = inst.intake_service(on_applied=self.app.state.outbox_wake)
        self.revocation = None
        if config.tls.enabled:
            self.revocation = self.app.state.revocation = RevocationChecker(config)
            with metrics.threads_of(self.events):
                self.revocation.refresh(force=True)
        self.scheduler: Optional[OpsScheduler] = None
        #: shown on the operations view: "running", "off", or the code that stopped this tenant's jobs
        self.scheduler_state = "off"

    async def __call__(self, scope, receive, send) -> None:
        """Serve one request with this tenant's application, counted in this tenant's metrics; while
        the tenant is paused, a coded 503 to resend (nothing was done)."""
        if self.paused:
            return await moving_answer(scope)(scope, receive, send)
        self.inflight += 1            # checked and counted before the first await: pause() sees it
        token = metrics.use(self.events)
        try:
            await self.app(scope, receive, send)
        finally:
            metrics.reset(token)
            self.inflight -= 1

    @contextmanager
    def counted(self):
        """What this block does (an operation-log entry the router writes here) counts in this tenant's metrics."""
        token = metrics.use(self.events)
        try:
            yield
        finally:
            metrics.reset(token)

    def start(self) -> None:
        with metrics.threads_of(self.events):      # the worker's and the CRL watcher's threads count here
            if self.revocation is not None:
                self.revocation.watch()
            if self.worker is not None:
                self.worker.start()

    def start_scheduler(self, monthly_delay: float = 60.0, gate=None) -> "OpsScheduler":
        """This tenant's daily jobs on its own installation (``jukinet serve`` does the same)."""
        with metrics.threads_of(self.events):
            self.scheduler = OpsScheduler(self.installation, monthly_delay=monthly_delay, gate=gate).start()
        self.app.state.ops_scheduler = self.scheduler     # the tenant's own /ops and /metrics show it
        self.scheduler_state = "running"
        return self.scheduler

    def stop(self) -> None:
        for part in (self.scheduler, self.worker, self.revocation):
            if part is None:
                continue
            try:
                part.stop()
            except Exception as e:  # noqa: BLE001 - stopping one part never stops the others
                log.error("tenant %s stop failed: %s", self.installation.config.prefecture_code,
                          getattr(e, "code", type(e).__name__))


def _json(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def moving_answer(scope):
    """503 ``TENANT_MOVING`` with ``Retry-After``: JSON for a CS and the terminal API, a page otherwise."""
    path = scope.get("path", "")
    if path.startswith(CS_PREFIXES) or path.startswith("/api/") or ((scope.get("extensions") or {}).get("tls") or {}).get(
            "client_cert_der"):
        return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                            content={"error": {"code": "TENANT_MOVING", "message": MOVING_MESSAGE}})
    r = _page(503, "TENANT_MOVING", "移行中", MOVING_MESSAGE)
    r.headers["Retry-After"] = "5"
    return r


def _page(status: int, code: str, title: str, message: str) -> HTMLResponse:
    body = (f"<!doctype html><html lang=\"ja\"><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p><p><small>{code}</small></p></body></html>")
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@functools.lru_cache(maxsize=4096)
def certificate_identity(der: bytes):
    """The identity the SAN of a certificate names (the TLS layer has verified the chain). Cached by
    the certificate's bytes: a CS shows the same certificate on every request (parsing it costs about
    0.2 ms; center_bench)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        ident = parse_identity_uri(uri)
        if ident is not None:
            return ident
    return None


class CenterApp:
    """The ASGI router of the center (see the module's docstring)."""

    def __init__(self, center: Center, tenants: dict[int, TenantRuntime], server: Optional["CenterServer"] = None):
        self.center = center
        self.tenants = tenants
        self.server = server
        self._terminal_tenant: dict[str, int] = {}   # sha256(cookie) -> prefecture (routing only)
        #: sha256(session token) -> (prefecture, operator ID) or None (routing only; bounded)
        self._session_owner: OrderedDict[str, Optional[tuple[int, Optional[str]]]] = OrderedDict()
        self._leases: dict[int, asyncio.Task] = {}
        self._health_lock = threading.Lock()
        self._health_rows: tuple[float, list[dict]] | None = None   # (monotonic time, rows)

    # ---- lifespan: every tenant application's startup and shutdown ---------------------------------

    async def _lifespan(self, receive, send) -> None:
        stack = AsyncExitStack()
        msg = await receive()
        try:
            for rt in self.tenants.values():
                await stack.enter_async_context(rt.app.router.lifespan_context(rt.app))
        except Exception:  # noqa: BLE001
            await send({"type": "lifespan.startup.failed", "message": "tenant startup failed"})
            return
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await receive()            # lifespan.shutdown
        await stack.aclose()
        await send({"type": "lifespan.shutdown.complete"})

    # ---- routing -----------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        tls = (scope.get("extensions") or {}).get("tls") or {}
        der = tls.get("client_cert_der")
        if der:
            return await self._cs(scope, receive, send, der)
        if path.startswith(CS_PREFIXES):
            await self._log("cs_refused", code="CLIENT_CERT_REQUIRED")
            return await _json(401, "CLIENT_CERT_REQUIRED",
                               "市町村CSのクライアント証明書による相互認証が必要です。")(scope, receive, send)
        if path.startswith("/center/api/tenants/"):
            return await self._control(scope, receive, send)
        if path in ("/center/ops", "/center/api/status"):
            return await self._ops(scope, receive, send, html_view=path == "/center/ops")
        if path == "/health":
            return await self._health(scope, receive, send)
        return await self._operator(scope, receive, send)

    async def _log(self, event: str, **kw) -> None:
        await run_in_threadpool(self.center.log_event, event, **kw)

    async def _refuse(self, event: str, code: str, message: str, *, door: str, caller: Optional[int] = None,
                      targets=(), actor: Optional[Actor] = None, actors: Optional[dict] = None, **detail) -> None:
        """The center log, and the operation log of each hosted prefecture concerned (ADR 0053)."""
        insts = {n: rt.installation for n, rt in self.tenants.items()}
        await run_in_threadpool(functools.partial(
            record_refusal, self.center, code, message, event=event, door=door, caller=caller, targets=targets,
            installations=insts, actor=actor, actors=actors, counted=lambda n: self.tenants[n].counted(), **detail))

    async def _cs(self, scope, receive, send, der: bytes):
        ident = certificate_identity(der)
        caller = prefecture_of(ident.code) if ident is not None else None
        rt = self.tenants.get(caller) if caller is not None else None
        is_cs = ident is not None and ident.kind == "cs"
        inspect = scope.get("method") == "POST" and scope.get("path") in NOTIFY_PATHS
        if is_cs and rt is not None and not inspect:
            return await rt(scope, receive, send)
        body, receive = await _buffer(receive) if inspect else (None, receive)
        if body is None:
            named = set()
        elif len(body) > 64 * 1024:      # a large batch is parsed off the event loop
            named = await run_in_threadpool(named_prefectures, body)
        else:
            named = named_prefectures(body)
        fp = pki.fingerprint(der)
        who = {"fingerprint": fp, "municipality": ident.code if ident is not None else None}
        actor = Actor(ident.label, None) if ident is not None else None
        if not is_cs:
            await self._refuse("cs_refused", "NOT_A_CS", "市町村CSの証明書ではありません。", door="cs_intake",
                               caller=caller, targets=named, actor=actor, **who)
            return await _json(403, "NOT_A_CS", "市町村CSの証明書ではありません。")(scope, receive, send)
        if rt is None:
            await self._refuse("cs_refused", "TENANT_UNKNOWN", TENANT_UNKNOWN_MSG, door="cs_intake",
                               caller=caller, targets=named, actor=actor, **who)
            return await _json(403, "TENANT_UNKNOWN", TENANT_UNKNOWN_MSG)(scope, receive, send)
        if named - {caller}:
            await self._refuse("cs_refused", "TENANT_MISMATCH", TENANT_MISMATCH_CS, door="cs_intake",
                               caller=caller, targets=named, actor=actor, **who)
            await run_in_threadpool(_comm_refusal, rt, ident.label, "TENANT_MISMATCH", fp, body)
            return await _json(403, "TENANT_MISMATCH", TENANT_MISMATCH_CS)(scope, receive, send)
        return await rt(scope, receive, send)

    # ---- operators: the tenant of the terminal --------------------------------------------------------

    def _find_terminal(self, raw: str) -> list[int]:
        return [n for n, rt in list(self.tenants.items())
                if not rt.paused and rt.installation.security.terminal_from_secret(raw) is not None]

    def _find_activation(self, code: str) -> list[int]:
        h = sha256(code)
        found = []
        for n, rt in list(self.tenants.items()):
            if rt.paused:
                continue
            with rt.installation.registers.admin_tx(write=False) as conn:
                if conn.execute(select(terminals.c.terminal_id).where(terminals.c.activation_hash == h)).first():
                    found.append(n)
        return found

    def _find_session(self, token: str, first: Optional[int]) -> Optional[tuple[int, Optional[str]]]:
        """(prefecture, operator ID) of the tenant whose sessions table knows ``token`` (the terminal's
        tenant asked first), or None."""
        order = ([first] if first is not None else []) + [n for n in sorted(self.tenants) if n != first]
        for n in order:
            s = self.tenants[n].installation.security.session_info(token)
            if s is not None:
                return n, s.operator_id
        return None

    async def _session_tenant(self, token: str, first: Optional[int]) -> Optional[tuple[int, Optional[str]]]:
        """Cached by the token's hash (routing only; the tenant checks the session on every request).
        A token no tenant knows is cached too: tokens are made by the server, one never seen stays unknown."""
        key = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        if key in self._session_owner:
            self._session_owner.move_to_end(key)
            return self._session_owner[key]
        found = await run_in_threadpool(self._find_session, token, first)
        self._session_owner[key] = found
        while len(self._session_owner) > SESSION_CACHE:
            self._session_owner.popitem(last=False)
        return found

    async def _terminal_of(self, raw: Optional[str]) -> Optional[int]:
        if not raw:
            return None
        key = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
        number = self._terminal_tenant.get(key)
        if number is None or number not in self.tenants:
            found = await run_in_threadpool(self._find_terminal, raw)
            if len(found) != 1:
                return None
            number = self._terminal_tenant[key] = found[0]
        return number

    async def _operator(self, scope, receive, send):
        path, method = scope.get("path", ""), scope.get("method", "GET")
        headers = _headers(scope)
        api = path.startswith("/api/")
        raw = _terminal_secret(headers, api)
        token = _session_secret(headers, api)
        number = await self._terminal_of(raw)
        if number is not None:
            owner = await self._session_tenant(token, number) if token else None
            if owner is not None and owner[0] != number:
                # another prefecture's session on this prefecture's terminal: refused before either sees it
                tid = raw.split(".", 1)[0]
                await self._refuse("operator_refused", "TENANT_MISMATCH", TENANT_MISMATCH_SESSION, door="operator",
                                   caller=number, targets=[owner[0]],
                                   actors={number: Actor(None, tid), owner[0]: Actor(owner[1], None)})
                resp = _refusal(api, 403, "TENANT_MISMATCH", "操作端末とセッションの不一致", TENANT_MISMATCH_SESSION)
                if not api:      # the browser drops the other prefecture's session: its next request reaches the login
                    delete_cookie(Request(scope), resp, A.SESSION_COOKIE)
                return await resp(scope, receive, send)
            return await self.tenants[number](scope, receive, send)
        if path == "/terminal/activate" and method == "POST":
            return await self._activate(scope, receive, send)
        if self.tenants and (path.startswith(RECEPTION_PREFIXES) or (path == "/terminal/activate" and method == "GET")):
            first = self.tenants[min(self.tenants)]
            return await first(scope, receive, send)
        if raw and any(rt.paused for rt in self.tenants.values()):
            # perhaps a terminal of the tenant being moved, not looked up while it is paused
            return await moving_answer(scope)(scope, receive, send)
        # an unregistered terminal; a session it presents still belongs to someone: that prefecture is told
        owner = await self._session_tenant(token, None) if token else None
        await self._refuse("operator_refused", "TERMINAL_UNREGISTERED", TERMINAL_UNREGISTERED_MSG, door="operator",
                           targets=[owner[0]] if owner else (),
                           actors={owner[0]: Actor(owner[1], None)} if owner else None)
        return await _refusal(api, 403, "TERMINAL_UNREGISTERED", "操作端末ではありません",
                              TERMINAL_UNREGISTERED_MSG)(scope, receive, send)

    async def _activate(self, scope, receive, send):
        body, more = b"", True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > 64 * 1024:
                break
        code = (parse_qs(body.decode("utf-8", "replace")).get("code") or [""])[0]
        found = await run_in_threadpool(self._find_activation, code) if code else []
        if len(found) != 1 and any(rt.paused for rt in self.tenants.values()):
            return await moving_answer(scope)(scope, receive, send)
        if len(found) != 1:
            await self._log("operator_refused", code="TERMINAL_ACTIVATION_INVALID")
            return await _page(403, "TERMINAL_ACTIVATION_INVALID", "操作端末の登録",
                               "登録コードが無効か期限切れです。")(scope, receive, send)
        sent = [False]

        async def replay():
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.tenants[found[0]](scope, replay, send)

    # ---- the center's own views ------------------------------------------------------------------------

    def _client_is_loopback(self, scope) -> bool:
        client = scope.get("client") or ("", 0)
        return client[0] in LOOPBACK

    def _status_rows(self) -> list[dict]:
        tenants = dict(self.tenants)
        rows = [s.as_dict() for s in center_status(self.center, {n: rt.installation for n, rt in tenants.items()
                                                                 if not rt.paused})]
        for r in rows:
            rt = tenants.get(r["prefecture"])
            r["scheduler"] = rt.scheduler_state if rt is not None else None
            if rt is not None and rt.paused:      # being moved: its databases are not looked at
                r["health"], r["error_code"] = "moving", "TENANT_MOVING"
        return rows

    # ---- the control door: pause and resume one tenant (a live move; ADR 0055) ------------------------

    async def _control(self, scope, receive, send):
        m = CONTROL_PATH.match(scope.get("path", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        token = self.center.control_token()
        given = headers.get(CONTROL_HEADER, "")
        if (not self._client_is_loopback(scope) or self.server is None or not token or not given
                or not hmac.compare_digest(given.encode(), token.encode())):
            await self._log("control_refused", code="CENTER_CONTROL_FORBIDDEN")
            return await _json(403, "CENTER_CONTROL_FORBIDDEN",
                               "集約センターの制御は運用端末 (ループバック) から制御用の鍵を添えてのみ行えます。")(scope, receive, send)
        if m is None or scope.get("method") != "POST":
            return await _json(404, "NOT_FOUND", "ありません。")(scope, receive, send)
        number, action = int(m.group(1)), m.group(2)
        if number not in self.tenants:
            await self._log("control_refused", code="TENANT_UNKNOWN", prefecture=number)
            return await _json(404, "TENANT_UNKNOWN", "この都道府県はこの集約センターに収容されていません。")(scope, receive, send)
        if action == "pause":
            lease = DEFAULT_LEASE
            try:
                lease = float((parse_qs(scope.get("query_string", b"").decode()).get("lease") or [DEFAULT_LEASE])[0])
            except ValueError:
                pass
            status, code = await self.pause(number, lease=min(max(lease, 5.0), 3600.0))
        else:
            status, code = await self.resume(number)
        if status != 200:
            return await _json(status, code, {"CENTER_PAUSE_TIMEOUT": "処理中の要求が終わりませんでした。一時停止していません。",
                                              "CENTER_NOT_PAUSED": "この都道府県は一時停止していません。"}.get(
                code, "再開できませんでした。都道府県は一時停止したままです (センターのログを確認してください)。"))(
                scope, receive, send)
        return await JSONResponse({"prefecture": number, "state": code})(scope, receive, send)

    async def pause(self, number: int, *, lease: float = DEFAULT_LEASE, drain_timeout: float = 60.0) -> tuple[int, str]:
        """Turn the tenant's new requests away (503 ``TENANT_MOVING``), wait for those in flight, stop
        its worker, CRL watcher and scheduler and close its connections. Only the event loop changes
        ``paused`` and ``inflight``, so no request slips in after the wait."""
        rt = self.tenants[number]
        if rt.paused:
            return 200, "paused"
        rt.paused = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while rt.inflight:
            if loop.time() > deadline:
                rt.paused = False
                await self._log("tenant_pause_failed", code="CENTER_PAUSE_TIMEOUT", prefecture=number)
                return 503, "CENTER_PAUSE_TIMEOUT"
            await asyncio.sleep(0.01)
        await run_in_threadpool(rt.stop)
        await run_in_threadpool(rt.installation.registers.dispose)
        self._leases[number] = asyncio.create_task(self._lease_expiry(number, lease))
        await self._log("tenant_paused", prefecture=number)
        return 200, "paused"

    async def _lease_expiry(self, number: int, lease: float) -> None:
        await asyncio.sleep(lease)
        self._leases.pop(number, None)
        rt = self.tenants.get(number)
        if rt is not None and rt.paused:
            await self._log("tenant_pause_expired", prefecture=number)
            await self.resume(number)

    async def resume(self, number: int) -> tuple[int, str]:
        """Open the tenant again from its configuration (the new database after a switch) and serve it."""
        old = self.tenants[number]
        if not old.paused:
            return 409, "CENTER_NOT_PAUSED"
        task = self._leases.pop(number, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        try:
            new = await run_in_threadpool(self.server.reopen, number)
        except Exception as e:  # noqa: BLE001 - the tenant stays paused; the code only
            code = getattr(e, "code", None) or type(e).__name__
            await self._log("tenant_resume_failed", code=code, prefecture=number)
            return 503, code
        self.tenants[number] = new             # in the event loop: the next request goes to the new one
        await run_in_threadpool(old.installation.close)
        await self._log("tenant_resumed", prefecture=number)
        return 200, "serving"

    async def _ops(self, scope, receive, send, *, html_view: bool):
        if not self._client_is_loopback(scope):
            # the center's own door; a prefecture whose terminal asked from outside sees it in its log
            caller = await self._terminal_of(_terminal_secret(_headers(scope), False)
                                             or _terminal_secret(_headers(scope), True))
            await self._refuse("ops_refused", "CENTER_OPS_FORBIDDEN", OPS_FORBIDDEN_MSG, door="ops_view", caller=caller)
            return await _json(403, "CENTER_OPS_FORBIDDEN", OPS_FORBIDDEN_MSG)(scope, receive, send)
        rows = await run_in_threadpool(self._status_rows)
        if not html_view:
            return await JSONResponse({"tenants": rows})(scope, receive, send)
        return await HTMLResponse(render_ops(rows), headers={"Cache-Control": "no-store"})(scope, receive, send)

    #: how old the tenants' health in a ``/health`` answer may be (s)
    HEALTH_MAX_AGE = 5.0

    def _health_rows_now(self) -> list[dict]:
        """The tenants' health for ``/health``: one check of every tenant's databases at a time, its
        answer reused for :attr:`HEALTH_MAX_AGE` s by the probes that arrive meanwhile (a load balancer
        and a monitor polling a 47-tenant center would otherwise each open 141 connections; with the
        connection cap of ADR 0055 they queued behind each other: 518 s to the first answer). A tenant
        paused since is shown ``moving`` at once."""
        with self._health_lock:
            if self._health_rows is None or time.monotonic() - self._health_rows[0] > self.HEALTH_MAX_AGE:
                self._health_rows = (time.monotonic(), self._status_rows())
            rows = [dict(r) for r in self._health_rows[1]]
        for r in rows:
            rt = self.tenants.get(r["prefecture"])
            if rt is not None and rt.paused:
                r["health"], r["error_code"] = "moving", "TENANT_MOVING"
        return rows

    async def _health(self, scope, receive, send):
        rows = await run_in_threadpool(self._health_rows_now)
        ok = all(r["health"] == "ok" for r in rows)
        return await JSONResponse({"status": "ok" if ok else "degraded",
                                   "tenants": {f"{r['prefecture']:02d}": r["health"] for r in rows}},
                                  status_code=200 if ok else 503)(scope, receive, send)


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _terminal_secret(headers: dict[str, str], api: bool) -> Optional[str]:
    return headers.get(A.TERMINAL_HEADER.lower()) if api else _cookie(headers.get("cookie", ""), A.TERMINAL_COOKIE)


def _session_secret(headers: dict[str, str], api: bool) -> Optional[str]:
    """The session token as the tenant's application reads it (:func:`jukinet.web.auth.session_token`)."""
    if api:
        auth = headers.get("authorization", "")
        return (auth[7:].strip() or None) if auth.lower().startswith("bearer ") else None
    return _cookie(headers.get("cookie", ""), A.SESSION_COOKIE) or None


def _refusal(api: bool, status: int, code: str, title: str, message: str):
    return _json(status, code, message) if api else _page(status, code, title, message)


async def _buffer(receive) -> tuple[Optional[bytes], object]:
    """Read the request body (up to the intake's limit) and a ``receive`` that replays it to the tenant.
    ``None`` as body: larger than the limit or cut off (not inspected; the tenant answers as it would)."""
    messages, size = [], 0
    while size <= MAX_INSPECT_BYTES:
        msg = await receive()
        messages.append(msg)
        if msg["type"] != "http.request":          # http.disconnect: the tenant sees it too
            break
        size += len(msg.get("body", b""))
        if not msg.get("more_body", False):
            break
    last = messages[-1]
    complete = last["type"] == "http.request" and not last.get("more_body", False)
    body = b"".join(m.get("body", b"") for m in messages) if complete else None

    async def replay():
        return messages.pop(0) if messages else await receive()

    return body, replay


def named_prefectures(body: Optional[bytes]) -> set[int]:
    """The prefectures a notification body (single or ``{"notifications": [...]}``) names as the
    municipality whose files it changes: ``municipality_code`` and the 附票's ``fuhyo_municipality_code``
    (``address_municipality_code`` may lie anywhere in Japan and names no files). Not JSON: none (the
    tenant refuses it).

    >>> sorted(named_prefectures(b'{"municipality_code": "242012", "record": {"fuhyo_municipality_code": "231061"}}'))
    [23, 24]
    >>> named_prefectures(b'{"notifications": [{"municipality_code": "999999"}, 5]}'), named_prefectures(b'[')
    (set(), set())
    """
    try:
        obj = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        return set()
    items = obj.get("notifications") if isinstance(obj, dict) and "notifications" in obj else [obj]
    codes: set[str] = set()           # a batch repeats its few municipality codes: each checked once
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        record = item.get("record")
        for code in (item.get("municipality_code"),
                     record.get("fuhyo_municipality_code") if isinstance(record, dict) else None):
            if isinstance(code, str):
                codes.add(code)
    return {n for n in map(prefecture_of, codes) if n is not None}


def _comm_refusal(rt: "TenantRuntime", peer: str, code: str, fingerprint: str, body: Optional[bytes]) -> None:
    """The caller's own communication log keeps its row, as when the tenant refuses (counted in its metrics)."""
    try:
        with rt.counted():
            rt.app.state.intake.record_refusal(peer=peer, code=code, fingerprint=fingerprint,
                                               envelope_digest=hashlib.sha256(body or b"").hexdigest(),
                                               size=len(body or b""))
    except Exception as e:  # noqa: BLE001 - the refusal stands; the center log has it
        log.error("communication log of the caller not written: %s", type(e).__name__)


def _cookie(header: str, name: str) -> Optional[str]:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v.strip('"')
    return None


def render_ops(rows: list[dict]) -> str:
    head = ("<tr><th>都道府県</th><th>状態</th><th>送信待ち (本人確認情報/附票)</th><th>最古の待ち (秒)</th>"
            "<th>最終バックアップ (UTC)</th><th>証明書の最短期限 (UTC)</th><th>使用容量 (バイト)</th><th>日次処理</th></tr>")
    body = "".join(
        f"<tr><td>{r['prefecture']:02d} {html.escape(r['name'])}</td><td>{html.escape(r['health'])}"
        f"{' ' + html.escape(r['error_code']) if r['error_code'] else ''}</td>"
        f"<td>{r['outbox_depth'].get('juki')} / {r['outbox_depth'].get('fuhyo')}</td>"
        f"<td>{r['outbox_oldest_age_seconds'].get('juki')} / {r['outbox_oldest_age_seconds'].get('fuhyo')}</td>"
        f"<td>{r['last_backup_at'] or '—'}</td><td>{r['cert_expires_at'] or '—'}</td><td>{r['disk_bytes']:,}</td>"
        f"<td>{html.escape(str(r.get('scheduler') or '—'))}</td></tr>"
        for r in rows)
    return ("<!doctype html><html lang=\"ja\"><meta charset=\"utf-8\"><title>集約センター 運用状況</title>"
            f"<body><h1>集約センター 運用状況</h1><table>{head}{body}</table>"
            "<p>件数は送信待ちの数のみ。本人確認情報の値・人数は表示しません。</p></body></html>")


class CenterServer:
    """All tenants of a center behind one HTTPS port (mutual TLS: every tenant's CA is trusted for
    client certificates; the tenant then checks against its own CA)."""

    def __init__(self, center: Center, *, outbox: Optional[bool] = None, schedulers: bool = False,
                 log_level: str = "warning", monthly_delay: float = 60.0):
        """``schedulers``: run each tenant's daily jobs (``jukinet center serve``; off in tests that
        do not look at them); the monthly catch-up of tenant i runs ``monthly_delay + 5 i`` s after the start."""
        self.center = center
        self.schedulers = schedulers
        self.monthly_delay = monthly_delay
        self.outbox = outbox
        self._stack = ExitStack()
        #: the tenants' PostgreSQL connections: idle ones closed, a budget per cluster (ADR 0055)
        self.connections = ConnectionGovernor(idle_seconds=center.pg_idle_seconds, limit=center.pg_connections)
        #: the backups and monthly analyses of all tenants, one at a time
        self.heavy_jobs = threading.Semaphore(1)
        try:
            installations = open_tenants(center, self._stack, self.connections)
            for inst in installations.values():   # issue 16: no tenant with a seed in progress
                require_seed_complete(inst.registers, str(inst.config.data_dir), f"{inst.config.prefecture_name}: ")
            self.tenants = {n: TenantRuntime(inst, outbox=outbox, outbox_poll=center.outbox_poll_seconds)
                            for n, inst in installations.items()}
        except BaseException:
            self._stack.close()
            raise
        center.ensure_pki()
        center.control_token(create=True)
        self.app = CenterApp(center, self.tenants, server=self)
        ctx = pki.server_context(center.server_cert, center.server_key, center.ca_cert, client_cert="optional",
                                 sslobject_class=transport.recording_class(self._handshake_refused))
        for rt in self.tenants.values():
            cfg = rt.installation.config
            ctx.load_verify_locations(str(cfg.resolve(cfg.tls.ca_cert)))
        self.ssl_context: ssl.SSLContext = ctx
        self.server = transport.make_server(self.app, center.host, center.port, ctx, log_level=log_level,
                                            plain_http_on_loopback=True)
        self._thread: Optional[transport.ServerThread] = None

    def _handshake_refused(self, code: str, _peer) -> None:
        try:
            self.center.log_event("tls_refused", code=code)
        except OSError:  # pragma: no cover
            log.warning("center log not writable")

    @property
    def base_url(self) -> str:
        return f"https://{self.center.host}:{self.center.port}"

    def _start_tenants(self) -> None:
        """Each tenant's outbox worker, CRL watcher and (``schedulers``) daily jobs, one tenant at a
        time: a tenant that fails is logged in the center log by code and the others still start."""
        self.connections.start()
        for index, (number, rt) in enumerate(sorted(self.tenants.items())):
            self._start_one(index, number, rt)

    def _start_one(self, index: int, number: int, rt: TenantRuntime) -> None:
        try:
            rt.start()
        except Exception as e:  # noqa: BLE001 - isolated per tenant; the code only
            self._tenant_failed("tenant_start_failed", number, e)
        if not self.schedulers:
            return
        try:
            rt.start_scheduler(monthly_delay=self.monthly_delay + 5.0 * index, gate=self.heavy_jobs)   # catch-ups one after another
        except Exception as e:  # noqa: BLE001
            rt.scheduler_state = getattr(e, "code", None) or type(e).__name__
            self._tenant_failed("scheduler_failed", number, e)

    def reopen(self, number: int) -> TenantRuntime:
        """The tenant opened again from its ``jukinet.toml`` and started (``resume`` after a move)."""
        entry = self.center.tenant(number)
        inst = open_tenant(self.center, entry, self.connections)
        try:
            require_seed_complete(inst.registers, str(inst.config.data_dir), f"{inst.config.prefecture_name}: ")
            rt = TenantRuntime(inst, outbox=self.outbox, outbox_poll=self.center.outbox_poll_seconds)
        except BaseException:
            inst.close()
            raise
        self._stack.callback(inst.close)
        self._start_one(sorted(self.tenants).index(number), number, rt)
        return rt

    def _tenant_failed(self, event: str, number: int, e: BaseException) -> None:
        code = getattr(e, "code", None) or type(e).__name__
        log.error("center tenant %02d %s: %s", number, event, code)
        try:
            self.center.log_event(event, code=code, prefecture=number)
        except OSError:  # pragma: no cover
            pass

    def run(self) -> None:
        self._start_tenants()
        try:
            self.server.run()
        finally:
            self.close()

    def start(self) -> "CenterServer":
        self._thread = transport.ServerThread(self.server).start()
        self._start_tenants()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
        self.close()

    def close(self) -> None:
        for rt in self.tenants.values():
            rt.stop()
        self.connections.stop()
        self._stack.close()
