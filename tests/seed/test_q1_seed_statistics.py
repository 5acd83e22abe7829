"""Q1 (issue 16): a seed leaves PostgreSQL's planner the real statistics of what it loaded.

Found on 東京都 at 14.0M residents: the seed built its indexes but never ran ``ANALYZE``, and this
machine's server runs with ``autovacuum = off`` (a production server may also lag behind a bulk
load), so the planner guessed 0.5 % of 17.5M rows for an equality on the 個人番号 blind index and
chose a parallel bitmap scan — 170 ms for a lookup that takes 0.05 ms with statistics. The seed now
analyses every table it loaded; ``pg_restore`` of a backup too (``jukinet.backup.snapshot``).
"""

from __future__ import annotations

import json

import pytest
from jukinet_testing import PG_URL, make_installation
from sqlalchemy import text

from jukinet.seed import populate
from jukinet.store.registers import Registers

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def regs(tmp_path, request):
    if not PG_URL:
        pytest.skip("JUKINET_TEST_POSTGRES_URL is not set")
    r = Registers(make_installation(tmp_path / "data", "postgres", request))
    request.addfinalizer(r.dispose)
    return r


def test_q1_seed_analyses_what_it_loaded_so_a_blind_index_lookup_is_planned_for_one_row(regs):
    report = populate(regs, 3000, seed=2)
    for engine, tables in ((regs.juki_engine, ("juki_current", "juki_history")),
                           (regs.fuhyo_engine, ("fuhyo_current", "fuhyo_history"))):
        with engine.connect() as c:
            for t in tables:
                analysed = c.execute(text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = :t "
                                          "AND schemaname = current_schema()"), {"t": t}).scalar_one()
                assert analysed is not None, f"{t} was not analysed after the seed"
                est = c.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": t}).scalar_one()
                real = c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                assert real > 0 and abs(est - real) <= 0.02 * real, (t, est, real)
    assert report.residents == 3000
    with regs.juki_engine.connect() as c:
        bi = c.execute(text("SELECT kojin_bango_bi FROM juki_current WHERE kojin_bango_bi IS NOT NULL LIMIT 1")).scalar_one()
        plan = c.execute(text("EXPLAIN (FORMAT JSON) SELECT * FROM juki_current WHERE kojin_bango_bi = :b"),
                         {"b": bi}).scalar_one()
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    assert top["Plan Rows"] <= 2, top     # without statistics: 0.5 % of the table
