"""Issue 19 (ADR 0048): long work of a screen runs in the background with a progress display polled by
htmx, and ends on a result page that is a GET (Post/Redirect/Get). The job is the session's own: its
URL carries a random key and nothing personal; another session cannot see it."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from fastapi import Request
from fastapi.responses import HTMLResponse

from jukinet.web import jobs
from jukinet.web import auth as A
from jukinet_testing import finish_job
from operator_site import site  # noqa: F401  (fixture)

LAST_MONTH = (datetime.now(timezone(timedelta(hours=9))).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def test_q4_monthly_report_generation_redirects_to_a_progress_page_then_to_its_result(site):
    c = site.client("manager")
    r = c.post("/audit/reports/generate", data={"month": LAST_MONTH, "csrf_token": site.csrf("manager")},
               follow_redirects=False)
    assert r.status_code == 303
    url = r.headers["location"]
    assert url.startswith("/jobs/job-") and LAST_MONTH not in url
    page = finish_job(c, c.get(url))
    assert page.status_code == 200 and 'id="report-sha256"' in page.text
    # the progress fragment of a finished job sends htmx to the result page
    frag = c.get(f"{url}/progress")
    assert frag.headers.get("HX-Redirect") == url
    # a reload shows the result again and generates nothing new
    assert 'id="report-sha256"' in c.get(url).text
    # another session (even of an operator who may read reports) does not see it
    other = site.client("auditor").get(url)
    assert other.status_code == 404 and "JOB_UNKNOWN" in other.text
    assert site.client("manager").get("/jobs/job-unknown").status_code == 404


def test_q4_progress_fragment_is_polled_every_second_while_the_work_runs(site):
    """A job whose work waits: the page and its fragment show the counts and poll every second; when
    the work ends the fragment redirects to the result page made by the screen."""
    app, gate = site.app, threading.Event()

    def work(job):
        job.progress(3, 10, "照会・結果ファイルの作成")
        gate.wait(10)
        return "結果"

    @app.post("/_test/job")
    async def start(request: Request):
        ctx = A.context(request)
        return jobs.start(request, ctx, title="試験の処理", back="/", unit="行", work=work,
                          finish=lambda request, ctx, job: HTMLResponse(f"<p id=done>{job.result}</p>"))

    c = site.client("manager")
    r = c.post("/_test/job", follow_redirects=False)
    url = r.headers["location"]
    deadline = time.monotonic() + 10
    while 'id="job-count"' not in (p := c.get(url)).text or "3 / 10" not in p.text:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert 'hx-trigger="every 1s"' in p.text and f'hx-get="{url}/progress"' in p.text
    assert 'value="30"' in p.text and "照会・結果ファイルの作成" in p.text
    frag = c.get(f"{url}/progress")
    assert frag.status_code == 200 and 'id="job-progress"' in frag.text and "<html" not in frag.text
    gate.set()
    done = finish_job(c, c.get(url))
    assert '<p id=done>結果</p>' in done.text
