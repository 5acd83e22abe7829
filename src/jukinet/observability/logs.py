"""Structured logs of ``jukinet serve`` (A7; ADR 0027).

``[observability] log_format = "json"`` (the default): one JSON object per line on stderr —
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` (the message), ``request_id`` (of the
HTTP request being served, if any) and the fields a caller passes in ``extra={"fields": {...}}``
(the request log adds ``method``, ``route`` (template), ``status``, ``duration_ms``,
``operator_id``). ``"text"``: the same, as one readable line.

Never in a log line: a value of a register (the code logs codes and counts), a raw URL or query
string (the request log has the route template only), an exception's *message* — database
errors quote the values of a statement, so an exception is logged as its type and the
``file:line function`` frames of its traceback, nothing else. uvicorn's access log is off (the
request log replaces it) and uvicorn's own loggers are routed through the same handler.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from datetime import datetime, timezone
from jukinet.errors import JukinetError
from pathlib import Path

#: the request being served (set by the HTTP middleware, copied into worker threads by anyio)
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("jukinet_request_id", default=None)

_HANDLER_MARK = "_jukinet_handler"
#: libraries that log statements, bodies or URLs at INFO/DEBUG (SQLAlchemy logs SQL *with parameters*):
#: held at WARNING whatever ``log_level`` says
QUIET = ("sqlalchemy", "alembic", "multipart", "python_multipart", "httpx", "httpcore", "hpack", "asyncio",
         "matplotlib", "fontTools", "PIL", "webauthn")


def exception_summary(exc_info) -> dict:
    """Type and frames of an exception, without its message (it may quote personal data)."""
    etype, _value, tb = exc_info
    frames = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_tb(tb)][-8:]
    return {"exc_type": getattr(etype, "__name__", str(etype)), "exc_frames": frames}


def _record_fields(record: logging.LogRecord) -> dict:
    out = {
        "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    rid = getattr(record, "request_id", None) or request_id.get()
    if rid:
        out["request_id"] = rid
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        out.update({k: v for k, v in fields.items() if v is not None})
    if record.exc_info and record.exc_info[0] is not None:
        out.update(exception_summary(record.exc_info))
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_record_fields(record), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        d = _record_fields(record)
        head = f"{d.pop('time')} {d.pop('level').upper():7} {d.pop('logger')}: {d.pop('event')}"
        return head + "".join(f" {k}={v}" for k, v in d.items())


def formatter(log_format: str) -> logging.Formatter:
    if log_format not in ("json", "text"):
        raise JukinetError("LOG_FORMAT_INVALID", "log_format は json か text を指定してください。",
                           field="observability.log_format")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(config, stream=None) -> logging.Handler:
    """Route every log line of the process (ours and uvicorn's) through one handler in the
    configured format; called by ``jukinet serve`` after the server object exists (uvicorn
    configures its own loggers when it is created)."""
    obs = config.observability
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(obs.log_format))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(obs.log_level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
        lg.setLevel(logging.NOTSET)   # follow log_level (uvicorn set its own)
    logging.getLogger("uvicorn.access").disabled = True   # replaced by the request log (jukinet.http)
    return handler


def configure_demo(config, path, console_stream=None) -> logging.Handler:
    """``jukinet demo``: every line to ``path`` in the configured format (a person tails it with
    ``tail -f``), and only warnings and errors on the console, as readable text."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = configure(config, stream=open(path, "a", encoding="utf-8", buffering=1))
    console = logging.StreamHandler(console_stream or sys.stderr)
    console.setFormatter(TextFormatter())
    console.setLevel(logging.WARNING)
    setattr(console, _HANDLER_MARK, True)
    logging.getLogger().addHandler(console)
    return handler


def server_log(event: str, **fields) -> None:
    """A line of ``jukinet serve`` itself (started, stopped) in the configured format."""
    logging.getLogger("jukinet.server").info(event, extra={"fields": fields})
