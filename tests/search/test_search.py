"""S1: 4情報 search — kana on the 清音化 key, kanji exact/prefix, birth date exact/range, sex,
address prefix, removed persons on request, cap, paging; prefix search uses the indexes (EXPLAIN)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from jukinet.domain.records import FuhyoRecord, JukiRecord, derive_fuhyo, derive_juki
from jukinet.errors import JukinetError
from jukinet.search import queries
from jukinet.search.service import DetailCommand, SearchCommand, detail, search
from jukinet.keyring import KeyRing
from jukinet.security.oplog import Actor, OperationLog

ACTOR = Actor("OP0001", "T0001")


def person(code, name, kana, birth, sex="1", address="三重県津市広明町13番地", **kw):
    return derive_juki(JukiRecord(juminhyo_code=code, name=name, name_kana=kana, birth_date=birth, sex=sex,
                                  address=address, kojin_bango=None, reason="国内転入", change_date=date(2020, 4, 1),
                                  municipality_code="242012", **kw))


PEOPLE = [
    person("20000000001", "山田　太郎", "ヤマダ　タロウ", date(1980, 4, 1)),
    person("20000000002", "山多　太郎", "ヤマタ　タロウ", date(1980, 4, 1)),
    person("20000000003", "浜田　ゆう", "ハマダ　ユウ", date(1975, 2, 1), sex="2", address="三重県四日市市諏訪町1番5号"),
    person("20000000004", "山田　花子", "やまだ　はなこ", date(1982, 7, 7), sex="2"),
    person("20000000005", "𠮷田　次郎", "ヨシダ　ジロウ", date(1990, 1, 1)),
    person("20000000006", "山田　一", "ヤマダ　ハジメ", date(1930, 5, 5), deleted=True, retention_flag=True),
    person("20000000007", "工藤　100%_x", "クドウ　ヒャク", date(1999, 9, 9), address="三重県津市100%_番地"),
]


@pytest.fixture
def env(registers, config):
    with registers.juki_uow() as uow:
        for p in PEOPLE:
            uow.repo.apply(p)
    return registers, OperationLog(KeyRing(config.data_dir), config.data_dir)


def run(env, **kw):
    registers, oplog = env
    kw.setdefault("purpose_code", "inquiry")
    return search(SearchCommand(**kw), registers, oplog, ACTOR, cap=kw.pop("cap", 200) if "cap" in kw else 200)


def names(res):
    return sorted(h.name for h in res.page_hits())


def test_s1_kana_prefix_finds_dakuten_variants(env):
    res = run(env, name="やまだ", name_match="prefix")
    assert names(res) == ["山多　太郎", "山田　太郎", "山田　花子"]  # ヤマダ ≡ ヤマタ; hiragana ≡ katakana


def test_s1_d5_kana_exact_uses_the_seion_key(env):
    assert names(run(env, name="ﾔﾏﾀﾞ ﾀﾛｰ")) == []                  # ー is dropped, not ウ
    assert names(run(env, name="ﾔﾏﾀﾞ ﾀﾛｳ")) == ["山多　太郎", "山田　太郎"]


def test_s1_kanji_exact_and_prefix(env):
    assert names(run(env, name="山田 太郎")) == ["山田　太郎"]     # half-width space typed
    assert names(run(env, name="山田", name_match="prefix")) == ["山田　太郎", "山田　花子"]
    assert names(run(env, name="𠮷田", name_match="prefix")) == ["𠮷田　次郎"]


def test_s1_birth_date_exact_and_range_sex_and_address(env):
    assert names(run(env, birth_from=date(1980, 4, 1), birth_to=date(1980, 4, 1))) == ["山多　太郎", "山田　太郎"]
    assert names(run(env, birth_from=date(1975, 1, 1), birth_to=date(1982, 12, 31), sex="2")) == [
        "山田　花子", "浜田　ゆう"]
    assert names(run(env, address="三重県四日市市")) == ["浜田　ゆう"]
    assert names(run(env, address="四日市市諏訪町")) == ["浜田　ゆう"]  # own prefecture may be left out
    assert names(run(env, address="四日市市諏訪町１番")) == ["浜田　ゆう"]  # full-width digits typed
    assert names(run(env, name="やまだ", name_match="prefix", birth_from=date(1982, 7, 7),
                     birth_to=date(1982, 7, 7), address="三重県津市")) == ["山田　花子"]


def test_s1_like_metacharacters_are_literal(env):
    assert names(run(env, address="三重県津市100%_")) == ["工藤　100%_x"]
    assert names(run(env, address="三重県津市1%")) == []


def test_s1_removed_persons_only_on_request(env):
    assert "山田　一" not in names(run(env, name="ヤマダ", name_match="prefix"))
    res = run(env, name="ヤマダ", name_match="prefix", include_removed=True)
    assert "山田　一" in names(res) and [h.removed for h in res.page_hits() if h.name == "山田　一"] == [True]


def test_s1_cap_refuses_to_list_and_paging(env):
    registers, oplog = env
    res = search(SearchCommand(purpose_code="inquiry", address="三重県"), registers, oplog, ACTOR, cap=3)
    assert res.over_cap and res.page_hits() == []
    res = search(SearchCommand(purpose_code="inquiry", address="三重県", page=2), registers, oplog, ACTOR,
                 cap=10, page_size=4)
    assert res.total == 6 and res.pages == 2 and len(res.page_hits()) == 2


@pytest.mark.parametrize("kw,code", [
    ({"purpose_code": "none", "name": "ヤマダ"}, "PURPOSE_REQUIRED"),
    ({"sex": "1"}, "SEARCH_TOO_BROAD"),
    ({"name": "ヤマダ", "sex": "3"}, "SEX_FORMAT"),
    ({"birth_from": date(1990, 1, 1), "birth_to": date(1980, 1, 1)}, "DATE_RANGE"),
    ({"name": "ヤマダ", "case_ref": "山田"}, "CASE_REF_FORMAT"),
    ({"name": "ヤマダ", "registers": ("other",)}, "REGISTER_REQUIRED"),
])
def test_q2_s1_bad_search_input_is_refused_with_a_code(env, kw, code):
    with pytest.raises(JukinetError) as e:
        run(env, **kw)
    assert e.value.code == code and "ヤマダ" not in e.value.message


def test_s1_detail_shows_history_and_is_logged(env):
    registers, oplog = env
    with registers.juki_uow() as uow:
        cur = uow.repo.get("20000000001")
        uow.repo.apply(cur.replace(address="三重県津市丸之内1番1号", reason="転居"), previous=cur)
    d = detail(DetailCommand("inquiry", "juki", "20000000001"), registers, oplog, ACTOR)
    assert d.record.address == "三重県津市丸之内1番1号" and [h.reason for h in d.history] == ["国内転入"]
    with registers.juki_engine.connect() as conn:
        row = conn.execute(text("SELECT action, result_count, keys FROM oplog ORDER BY seq DESC")).first()
    assert row.action == "detail" and row.result_count == 2 and "20000000001" not in row.keys


def _plan(conn, sql_query) -> str:
    compiled = sql_query.compile(conn)  # bound parameters, as the service runs it
    params = compiled.params if conn.dialect.name == "postgresql" else compiled.positiontup and tuple(
        compiled.params[k] for k in compiled.positiontup)
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), params).all()
        return "\n".join(r[0] for r in rows)
    rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).all()
    return "\n".join(str(r[-1]) for r in rows)


def _bulk_people(register: str, n: int = 3000) -> list:
    if register == "juki":
        return [person(f"3{i:010d}", f"名{i}　太郎", f"カナ{i}　タロウ", date(1950 + i % 50, 1 + i % 12, 1),
                       address=f"三重県市{i % 30}町{i}番地").replace(
                    timestamp=datetime(2020, 4, 1, tzinfo=timezone.utc), notified_date=date(2020, 4, 1),
                    update_seq=1000 + i) for i in range(n)]
    return [derive_fuhyo(FuhyoRecord(juminhyo_code=f"3{i:010d}", name=f"名{i}　太郎", name_kana=f"カナ{i}　タロウ",
                                     birth_date=date(1950 + i % 50, 1 + i % 12, 1), sex="1",
                                     address_municipality_code="242012", address=f"三重県市{i % 30}町{i}番地",
                                     change_date=date(2020, 4, 1), fuhyo_municipality_code="242012")).replace(
                timestamp=datetime(2020, 4, 1, tzinfo=timezone.utc), notified_date=date(2020, 4, 1), update_seq=1000 + i)
            for i in range(n)]


PLAN_QUERIES = {
    "kana_prefix_birth": dict(name_seion="カナ123", name_prefix=True, birth_from=date(1973, 4, 1),
                              birth_to=date(1973, 4, 1)),
    "kanji_exact": dict(names=["名7　太郎"]),
    "address_prefix": dict(addresses=["三重県市7町"]),
    "kana_prefix": dict(name_seion="カナ123", name_prefix=True),
    # 漢字氏名 prefix: on PostgreSQL through the text_pattern_ops index of juki_0008 / fuhyo_0007 (ADR 0011)
    "kanji_prefix": dict(names=["名123"], name_prefix=True),
    "kanji_prefix_birth": dict(names=["名12　太", "名12 太"], name_prefix=True, birth_from=date(1962, 1, 1),
                               birth_to=date(1962, 1, 1)),
}


@pytest.mark.parametrize("register,kind", [("juki", k) for k in PLAN_QUERIES]
                         + [("fuhyo", k) for k in ("kanji_prefix", "kanji_prefix_birth", "kana_prefix")])
def test_s1_prefix_search_uses_the_indexes(registers, register, kind):
    """EXPLAIN on both engines: the query is answered from an index, not a full scan."""
    with (registers.juki_uow() if register == "juki" else registers.fuhyo_uow()) as uow:
        uow.repo.bulk_load(_bulk_people(register))
    engine = registers.juki_engine if register == "juki" else registers.fuhyo_engine
    dialect = engine.dialect.name
    table = f"{register}_current"
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text(f"ANALYZE {table}"))
        else:
            conn.exec_driver_sql("ANALYZE")
        plan = _plan(conn, queries.build(register, dialect, **PLAN_QUERIES[kind]))
    if dialect == "postgresql":
        assert "Index" in plan and "Seq Scan" not in plan, plan
    else:
        assert "USING INDEX" in plan and f"SCAN {table}" not in plan.replace("USING INDEX", ""), plan
