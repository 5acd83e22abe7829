"""A7 (ADR 0045): a background thread of a center tenant counts in that tenant's metrics — and a later
thread that the system gives the same thread id (ids are reused once a thread ends) never does: its
counts go to its own installation's registry, not to a stopped tenant's (seen in CI: a CRL watcher
counted its refusals in a stopped center's tenant)."""

import threading

from jukinet.observability import metrics


def _crl_rollbacks(events) -> float:
    return events.registry.get_sample_value("jukinet_crl_load_errors_total", {"code": "CRL_ROLLBACK"}) or 0


def test_a7_a_reused_thread_id_never_counts_in_a_stopped_tenants_metrics():
    tenant = metrics.Events()
    done = threading.Event()
    with metrics.threads_of(tenant):
        t = threading.Thread(target=done.wait, name="tenant-worker")
        t.start()
    t_counts = []
    # the tenant's own thread counts in the tenant's events
    probe = threading.Thread(target=lambda: t_counts.append(metrics.current() is tenant))
    assert metrics._threads[t.ident][1] is tenant
    done.set()
    t.join()
    # the tenant stopped; a new thread now runs under the same id (forced here: the OS does it by chance)
    before_default, before_tenant = _crl_rollbacks(metrics._DEFAULT), _crl_rollbacks(tenant)
    seen = []

    def reused():
        metrics._threads[threading.get_ident()] = (t, tenant)   # the stale entry the stopped tenant left
        seen.append(metrics.current())
        metrics.crl_load_error("CRL_ROLLBACK")
        del metrics._threads[threading.get_ident()]

    r = threading.Thread(target=reused)
    r.start()
    r.join()
    assert seen == [metrics._DEFAULT]
    assert _crl_rollbacks(metrics._DEFAULT) == before_default + 1 and _crl_rollbacks(tenant) == before_tenant
    probe.start()
    probe.join()
    assert t_counts == [False]          # an unrelated thread is not the tenant's either
