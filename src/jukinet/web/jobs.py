"""Long work of an operator screen, run in the background with a progress display (issue 19, ADR 0048):
一括提供 (``/provision/batch``) and the monthly report (``/audit/reports``).

The POST that starts the work answers at once with Post/Redirect/Get to ``GET /jobs/<key>``; that page
shows a progress fragment which htmx polls every second (``GET /jobs/<key>/progress``,
``hx-trigger="every 1s"``). When the work is over the fragment answers ``HX-Redirect`` to the same
``/jobs/<key>``, which now shows the final result page (rendered by the screen that started the job);
a reload shows it again and re-submits nothing.

The job's state (counts, stage, result) is kept in the server's memory per session
(:mod:`jukinet.web.scratch`, the same memory as the search results): the URL carries only a random key,
never personal data; another session never sees it; it is dropped at logout, lock or expiry. Work runs
in a thread of its own; at most :data:`MAX_RUNNING` jobs of the process run at a time (the others wait
in ``待機中``), so a batch never starves the screens. A job outlives a closed browser tab (the work is
recorded by its service as usual), not the process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from jukinet.errors import JukinetError
from jukinet.web import auth as A
from jukinet.web.pages import _redirect, message, render

router = APIRouter(include_in_schema=False)

MAX_RUNNING = 2
_slots = threading.BoundedSemaphore(MAX_RUNNING)

STATES = {"waiting": "待機中", "running": "処理中", "done": "完了", "failed": "エラー"}


@dataclass
class Job:
    """One piece of long work of one session. ``done``/``total`` count rows (or stages); ``stage`` names
    what is being done now. ``result`` or ``error`` is set when it is over."""
    title: str
    back: str                    # the screen the job belongs to (its nav and 「戻る」)
    finish: Callable[..., Response]   # (request, ctx, job) -> the final page
    unit: str = "件"
    state: str = "waiting"
    done: int = 0
    total: Optional[int] = None
    stage: str = ""
    started: float = field(default_factory=time.monotonic)
    ended: Optional[float] = None
    result: Any = None
    error: Optional[JukinetError] = None
    data: dict = field(default_factory=dict)    # what the final page needs besides the result (the form sent)

    def progress(self, done: int, total: Optional[int], stage: str | None = None) -> None:
        self.done, self.total = done, total
        if stage is not None:
            self.stage = stage

    @property
    def over(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def percent(self) -> Optional[int]:
        if not self.total:
            return None
        return max(0, min(100, int(self.done * 100 / self.total)))

    @property
    def elapsed(self) -> int:
        return int((self.ended or time.monotonic()) - self.started)


def _run(job: Job, work: Callable[[Job], Any], cleanup: Callable[[], None] | None) -> None:
    try:
        with _slots:
            job.state, job.started = "running", time.monotonic()
            try:
                job.result = work(job)
                job.state = "done"
            except JukinetError as e:
                job.error, job.state = e, "failed"
            except Exception:   # never a silent failure: the page says so; the service logged what it knew
                job.error = JukinetError("JOB_FAILED", "処理を完了できませんでした。時間をおいて再度実行し、"
                                                       "続く場合は運用担当者に連絡してください。")
                job.state = "failed"
    finally:
        job.ended = time.monotonic()
        if cleanup:
            cleanup()


def start(request: Request, ctx: A.Ctx, *, title: str, back: str, work: Callable[[Job], Any],
          finish: Callable[..., Response], unit: str = "件", cleanup: Callable[[], None] | None = None,
          **data) -> Response:
    """Start ``work(job)`` in the background and send the browser to its progress page (303 or
    ``HX-Redirect``). ``work`` reports with ``job.progress(done, total, stage)``; ``finish(request, ctx,
    job)`` renders the final page. ``cleanup`` runs when the work is over (a temporary upload)."""
    job = Job(title=title, back=back, finish=finish, unit=unit, data=data)
    key = A.scratch(request).put(ctx.session.session_hash, "job", job)
    threading.Thread(target=_run, args=(job, work, cleanup), name=f"jukinet-{key[:8]}", daemon=True).start()
    return _redirect(request, f"/jobs/{key}")


def _job(request: Request, ctx: A.Ctx, key: str) -> Job | None:
    job = A.scratch(request).get(ctx.session.session_hash, key) if key.startswith("job-") else None
    return job if isinstance(job, Job) else None


def _unknown(request: Request, ctx: A.Ctx) -> Response:
    return message(request, "処理の状況を表示できません",
                   "この処理の状況は表示できません (保存期間が過ぎたか、別のセッションの処理です)。"
                   "結果は各画面 (媒体管理簿・操作ログ月次分析) で確認してください。",
                   code="JOB_UNKNOWN", status=404, ctx=ctx, link="/", link_text="メニューへ")


@router.get("/jobs/{key}")
def job_page(request: Request, key: str):
    """The progress page while the work runs; the final result page (PRG) when it is over."""
    ctx = A.context(request)
    job = _job(request, ctx, key)
    if job is None:
        return _unknown(request, ctx)
    if job.over:
        return job.finish(request, ctx, job)
    return render(request, "jobs/progress.html", ctx, job=job, key=key)


@router.get("/jobs/{key}/progress")
def job_progress(request: Request, key: str):
    """The progress fragment htmx polls; ``HX-Redirect`` to the result page once the work is over."""
    ctx = A.context(request)
    job = _job(request, ctx, key)
    if job is None:
        return _unknown(request, ctx)
    if job.over:
        return Response(status_code=200, headers={"HX-Redirect": f"/jobs/{key}"})
    html = render(request, "jobs/_progress.html", ctx, job=job, key=key)
    return HTMLResponse(html.body, headers={"Cache-Control": "no-store"})


def install(app: FastAPI) -> None:
    app.include_router(router)


__all__ = ["Job", "start", "install", "router", "STATES"]
