"""Q3: a database that cannot be reached (a failover in progress) is a coded 503 the CS resends —
never a 500 — and the CS simulator resends until it is answered (issue 15, ADR 0037)."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from jukinet.sim.cs import CsClient

from .helpers import TSU, jcode, tennyu

class _Orig(Exception):
    pass


def test_q3_connection_lost_is_a_coded_503_and_the_cs_resends(shared, monkeypatch):
    svc = shared.server.intake
    real = svc.submit
    calls = []

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) <= 2:     # the primary died mid-commit, twice
            raise OperationalError("COMMIT", {}, _Orig("server closed the connection unexpectedly"))
        return real(*a, **kw)

    monkeypatch.setattr(svc, "submit", flaky)
    n = tennyu(jcode(91001))
    one = shared.cs[TSU].send(n)                          # no retry: the answer as it is
    assert one["status"] == "rejected" and one["error"]["code"] == "DATABASE_UNAVAILABLE"
    r = shared.cs[TSU].post("/cs/v1/notifications", b'{}')
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    client = CsClient(shared.config, TSU, retry_for=10, retry_initial=0.01)
    try:
        calls.clear()
        assert client.send(n)["status"] == "accepted"      # resent twice, then applied
        assert client.retries == 2 and client.retried_requests == 1
        assert client.send(n)["status"] == "duplicate"     # a resend of what was applied: never twice
    finally:
        client.close()
