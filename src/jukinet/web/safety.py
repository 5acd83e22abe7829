"""Text at the operator side's door, and the application's last safety net (Q2).

:class:`TextGuard` is where text first enters the operator side (forms, the terminal's JSON API,
URL paths and queries): every string — form fields, JSON keys and values, the path, the query —
must be storable (:func:`jukinet.text.is_storable`), or the request is refused before any route
sees it: 400 ``TEXT_NOT_ENCODABLE`` (JSON, naming the item when it is a plain field name, never the
value). A form body that is not UTF-8 is refused the same way (a browser always sends UTF-8; the
form parser would silently turn bad bytes into U+FFFD). The CS channel (``/cs/``) checks its own
text, per notification (:mod:`jukinet.intake.wire`). In a multipart body (a file upload) the file
is left to the parser of the file it carries (:mod:`jukinet.provision.batch`, the catalogue), but
every other field (and every field and file name) is checked as the body streams to the route
(:class:`_MultipartText`, no copy of the body is kept): Starlette would read a field that is not
UTF-8 as Latin-1 — mojibake reaching the route as if typed — so it is refused instead with the
same coded 400 ``TEXT_NOT_ENCODABLE``, naming the field, before the route acts on the form.

No answer is ever a framework default body: an unknown route (404), a method the route does not
take (405), any other ``HTTPException`` and a request that does not fit a route's parameters (422)
are coded JSON ``{"error": {"code", "message"}}`` with a Japanese message (:func:`http_refusal`),
never ``{"detail": …}``. The operator UI renders its own refusals as HTML pages (``Refused``).

A full disk or a read-only database (:mod:`jukinet.store.faults`) is neither the client's error nor a
bug: wherever it surfaces (a route, the operation log, a session write) the answer is 503
``STORAGE_UNAVAILABLE`` with ``Retry-After`` (:class:`StorageGuard`); nothing was written, and the
next request succeeds once the storage takes writes again (ADR 0038).

No request ever gets a bare ``text/plain`` 500. An encoding error about a lone surrogate can only come from request text (nothing
the system itself writes holds one): it is the client's, 400 ``TEXT_NOT_ENCODABLE``. Anything else
unexpected is a real server fault and stays one — a coded JSON 500 ``INTERNAL_ERROR`` — so a fault
is never hidden as a client error. Neither answer nor the log line carries the exception's text
(it may quote a value); only its type is logged.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Optional
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from jukinet import text
from jukinet.store import faults
from jukinet.web.asgi import HttpMiddleware

log = logging.getLogger("jukinet.http")

_NO_STORE = {"Cache-Control": "no-store"}


def caused_by_request_text(exc: BaseException) -> bool:
    """True for an encoding error over a lone surrogate (what a JSON ``\\ud800`` decodes to).

    >>> try:
    ...     "a\\ud800".encode("utf-8")
    ... except UnicodeEncodeError as e:
    ...     caused_by_request_text(e)
    True
    >>> try:
    ...     "𠮷".encode("cp932")
    ... except UnicodeEncodeError as e:
    ...     caused_by_request_text(e)
    False
    """
    if not isinstance(exc, UnicodeEncodeError) or not isinstance(exc.object, str):
        return False
    return any("\ud800" <= ch <= "\udfff" for ch in exc.object[exc.start:exc.end])


_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")   # a form/JSON item name we may name back
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _named(key) -> Optional[str]:
    return key if isinstance(key, str) and _FIELD_NAME.match(key) else None


def _utf8(raw: str) -> Optional[str]:
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _check_urlencoded(raw: bytes) -> Optional[tuple[str | None]]:
    """Each ``name=value`` pair must be UTF-8 (strictly) and storable."""
    for part in raw.decode("latin-1").split("&"):
        k, _, v = part.partition("=")
        key, value = _utf8(k), _utf8(v)
        if key is None or not text.is_storable(key):
            return (None,)
        if value is None or not text.is_storable(value):
            return (_named(key),)
    return None


def refused_item(method: str, path: str, query: bytes, content_type: str, body: bytes) -> Optional[tuple]:
    """None if all the request's text is storable, else ``(field or None,)``.

    >>> refused_item("GET", "/search", b"q=%E5%B1%B1", "", b"") is None
    True
    >>> refused_item("GET", "/roster/operators/A%00", b"", "", b"") is None   # the path as received
    True
    >>> refused_item("GET", "/roster/operators/A\\x00", b"", "", b"")
    (None,)
    >>> refused_item("POST", "/search", b"", "application/x-www-form-urlencoded", b"name=%00&x=1")
    ('name',)
    >>> refused_item("POST", "/search", b"", "application/x-www-form-urlencoded", b"name=%ED%A0%80")   # not UTF-8
    ('name',)
    >>> refused_item("POST", "/api/v1/search", b"", "application/json", b'{"name": "\\\\ud800"}')
    ('name',)
    >>> refused_item("POST", "/api/v1/search", b"", "application/json", b'{"name": "\\\\u5c71"}') is None
    True
    """
    if not text.is_storable(path):
        return (None,)
    found = _check_urlencoded(query)
    if found:
        return found
    if method not in _BODY_METHODS or not body:
        return None
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return _check_urlencoded(body)
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            return None   # not JSON: the route's own parser refuses it
        where = text.find(obj)
        if where is None:
            return None
        return (None,) if not where or where[-1] == text.KEY else (_named(where[0]),)
    return None


class FormTextRefused(StarletteHTTPException):
    """A multipart field that is not UTF-8 or not storable, found while the route reads its form.

    An ``HTTPException`` so that FastAPI's form parsing passes it on unchanged (it turns any other
    error of the body into a generic 400); answered by :func:`install`'s handler as a coded 400."""

    def __init__(self, field: Optional[str]):
        super().__init__(status_code=400)
        self.field = field


class _MultipartText:
    """Watches a ``multipart/form-data`` body chunk by chunk: the name of every part, the file name of
    a file, and the value of every part that is not a file must be strict UTF-8 and storable. Keeps
    only the value of the field being read (up to Starlette's own 1 MiB limit of a field); a body it
    cannot parse is left to the route's parser, which refuses it.

    >>> w = _MultipartText("multipart/form-data; boundary=B")
    >>> w.feed(b'--B\\r\\nContent-Disposition: form-data; name="requester_code"\\r\\n\\r\\nSOMU\\r\\n--B--\\r\\n')
    >>> w = _MultipartText("multipart/form-data; boundary=B")
    >>> w.feed(b'--B\\r\\nContent-Disposition: form-data; name="requester_code"\\r\\n\\r\\n\\x93\\x8c\\r\\n--B--\\r\\n')
    ('requester_code',)
    """

    MAX_FIELD = 1024 * 1024

    def __init__(self, content_type: str):
        self.found: Optional[tuple] = None
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        self._headers: list[tuple[bytes, bytes]] = []
        self._name = self._value = b""
        self._field: Optional[str] = None
        self._file = False
        self._data = bytearray()
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_field": self._header_name,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done, "on_part_data": self._part_data,
            "on_part_end": self._part_end}) if boundary else None

    def feed(self, chunk: bytes) -> Optional[tuple]:
        if self.parser is not None and self.found is None and chunk:
            try:
                self.parser.write(chunk)
            except Exception:  # noqa: BLE001 - malformed: the route's own parser refuses the body
                self.parser = None
        return self.found

    def _refuse(self, field: Optional[str]) -> None:
        if self.found is None:
            self.found = (field,)

    def _begin(self) -> None:
        self._headers, self._field, self._file, self._data = [], None, False, bytearray()

    def _header_name(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._name.lower(), self._value))
        self._name = self._value = b""

    def _headers_done(self) -> None:
        disposition = next((v for k, v in self._headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition)
        name = _strict(options.get(b"name", b""))
        if name is None:
            self._refuse(None)
            return
        self._field = _named(name)
        self._file = b"filename" in options
        if self._file and _strict(options[b"filename"]) is None:
            self._refuse(self._field)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._file and len(self._data) <= self.MAX_FIELD:
            self._data += data[start:end]

    def _part_end(self) -> None:
        if not self._file and _strict(bytes(self._data)) is None:
            self._refuse(self._field)
        self._data = bytearray()


def _strict(raw: bytes) -> Optional[str]:
    """``raw`` as UTF-8 text if it is that and storable, else None."""
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return value if text.is_storable(value) else None


def text_refusal(field: Optional[str]) -> JSONResponse:
    """400 ``TEXT_NOT_ENCODABLE`` (naming the item when it is a plain field name, never the value)."""
    err = {"code": text.CODE, "message": text.message("入力項目")}
    if field:
        err["field"] = field
    return JSONResponse(status_code=400, headers=_NO_STORE, content={"error": err})


class TextGuard:
    """ASGI middleware: refuse a request whose text is not storable, before any route runs."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/cs/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        method = scope["method"]
        body = b""
        replay = receive
        if method in _BODY_METHODS and ctype.lower().startswith("multipart/form-data"):
            await self.app(scope, _watched(receive, _MultipartText(ctype), method), send)
            return
        if method in _BODY_METHODS and not ctype.lower().startswith("multipart/"):
            chunks, more = [], True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    await self.app(scope, _once(message), send)   # disconnected: let the app see it
                    return
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
            replay = _replay(body, receive)
        found = refused_item(method, scope["path"], scope.get("query_string", b""), ctype, body)
        if found is None:
            await self.app(scope, replay, send)
            return
        log.warning("request text not storable (%s)", method)
        await text_refusal(found[0])(scope, receive, send)


def _watched(receive, watch: _MultipartText, method: str):
    """``receive`` passing each chunk of a multipart body through ``watch``; the chunk with a refused
    field is not passed on: :class:`FormTextRefused` is raised to the route reading the form."""
    async def watched():
        message = await receive()
        if message["type"] == "http.request" and watch.feed(message.get("body", b"")):
            log.warning("request text not storable (%s, multipart)", method)
            raise FormTextRefused(watch.found[0])
        return message
    return watched


class StorageGuard(HttpMiddleware):
    """ASGI middleware: a storage fault that escaped a route is 503 ``STORAGE_UNAVAILABLE`` (JSON,
    ``Retry-After``), not a 500 — unless the answer had already begun (then it is re-raised)."""

    async def http(self, scope, receive, send):
        started = False

        async def watched(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started or not faults.is_storage_fault(exc):
                raise
            log.error("storage unavailable (%s) on %s", type(exc).__name__, scope.get("method"))
            await storage_refusal()(scope, receive, send)


def storage_refusal() -> JSONResponse:
    """503 ``STORAGE_UNAVAILABLE``: nothing was written; the same request may be sent again later."""
    return JSONResponse(status_code=503, headers={**_NO_STORE, "Retry-After": str(faults.RETRY_AFTER_SECONDS)},
                        content={"error": {"code": faults.CODE, "message": faults.MESSAGE}})


def _once(message):
    async def receive():
        return message
    return receive


def _replay(body: bytes, receive):
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed


#: status → (code, Japanese message) for the framework's own refusals
HTTP_REFUSALS = {
    400: ("BAD_REQUEST", "リクエストの形式が正しくありません。"),
    401: ("AUTH_REQUIRED", "認証が必要です。"),
    403: ("FORBIDDEN", "この操作は許可されていません。"),
    404: ("NOT_FOUND", "指定された場所は存在しません。"),
    405: ("METHOD_NOT_ALLOWED", "この場所ではその操作（メソッド）は受け付けていません。"),
    406: ("NOT_ACCEPTABLE", "要求された形式では応答できません。"),
    408: ("REQUEST_TIMEOUT", "リクエストが時間内に届きませんでした。"),
    409: ("CONFLICT", "他の処理と競合しました。"),
    411: ("LENGTH_REQUIRED", "リクエストの長さが指定されていません。"),
    413: ("REQUEST_TOO_LARGE", "リクエストが大きすぎます。"),
    414: ("URI_TOO_LONG", "URL が長すぎます。"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "この形式のリクエストは受け付けていません。"),
    422: ("INPUT_INVALID", "入力の形式が正しくありません。"),
    429: ("TOO_MANY_REQUESTS", "リクエストが多すぎます。時間をおいて再度お試しください。"),
    503: ("SERVICE_UNAVAILABLE", "ただいま処理できません。時間をおいて再度お試しください。"),
}


def http_refusal(status: int, headers: Optional[dict] = None) -> JSONResponse:
    """The coded JSON answer for a framework refusal of ``status`` (never the exception's detail).

    >>> r = http_refusal(405, {"Allow": "GET"})
    >>> r.status_code, json.loads(r.body)["error"]["code"], r.headers["allow"]
    (405, 'METHOD_NOT_ALLOWED', 'GET')
    >>> json.loads(http_refusal(418).body)["error"]["code"]
    'HTTP_418'
    """
    if status >= 500:
        code, msg = HTTP_REFUSALS.get(status, ("INTERNAL_ERROR", "サーバ内部でエラーが発生しました。時間をおいて再度お試しください。"))
    else:
        code, msg = HTTP_REFUSALS.get(status, (f"HTTP_{status}", "リクエストを処理できませんでした。"))
    return JSONResponse(status_code=status, headers={**_NO_STORE, **(headers or {})},
                        content={"error": {"code": code, "message": msg}})


def validation_refusal(exc: RequestValidationError) -> JSONResponse:
    """422 ``INPUT_INVALID`` naming the fields (never their values)."""
    fields = [".".join(str(x) for x in e.get("loc", ()) if x != "body") for e in exc.errors()]
    code, msg = HTTP_REFUSALS[422]
    err = {"code": code, "message": msg}
    if fields:
        err["field"] = ",".join(fields)[:200]
    return JSONResponse(status_code=422, headers=_NO_STORE, content={"error": err})


def install(app: FastAPI) -> None:
    """Add the text guard, the storage guard and the handlers to ``app``."""
    app.add_middleware(TextGuard)
    app.add_middleware(StorageGuard)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if isinstance(exc, FormTextRefused):
            return text_refusal(exc.field)
        return http_refusal(exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return validation_refusal(exc)

    @app.exception_handler(UnicodeError)
    async def _unicode(request: Request, exc: UnicodeError):
        if caused_by_request_text(exc):
            log.warning("request text not encodable (%s %s)", request.method, request.url.path)
            return JSONResponse(status_code=400, headers=_NO_STORE, content={"error": {
                "code": text.CODE, "message": text.message("入力")}})
        return _internal(request, exc)

    @app.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception):
        return _internal(request, exc)


def _internal(request: Request, exc: BaseException) -> JSONResponse:
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        # the database is unreachable or the connection died (a failover): retry later, not a fault
        log.warning("database unavailable (%s) on %s %s", type(exc).__name__, request.method, request.url.path)
        return JSONResponse(status_code=503, headers={**_NO_STORE, "Retry-After": "1"}, content={"error": {
            "code": "DATABASE_UNAVAILABLE",
            "message": "データベースに接続できません (切替中の可能性があります)。時間をおいて再度お試しください。"}})
    log.error("internal error (%s) on %s %s", type(exc).__name__, request.method, request.url.path)
    return JSONResponse(status_code=500, headers=_NO_STORE, content={"error": {
        "code": "INTERNAL_ERROR", "message": "サーバ内部でエラーが発生しました。時間をおいて再度お試しください。"}})
