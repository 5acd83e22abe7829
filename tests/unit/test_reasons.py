"""U3 (logic by 異動事由) at the domain level: the reason tables of both registers."""

from datetime import date

import pytest

from jukinet.domain.reasons import (FUHYO_REASONS, JUKI_REASONS, ChangeRefused, check_fuhyo, check_juki)
from jukinet.domain.records import FormerSurname, FuhyoRecord, JukiRecord

TODAY = date(2026, 11, 26)
TSU = "242012"
YOKKAICHI = "242021"


def person(**kw) -> JukiRecord:
    base = dict(juminhyo_code="52601815907", name="三重　太郎", name_kana="ミエ　タロウ", birth_date=date(1980, 4, 1),
                sex="1", address="三重県津市広明町13番地", kojin_bango="625276018957", reason="国内転入",
                change_date=date(2026, 11, 20), municipality_code=TSU, oaza_code="0012")
    base.update(kw)
    return JukiRecord(**base)


def juki(reason, proposed, current=None, any_record=None, sender=TSU, **kw):
    return check_juki(reason, sender=sender, current=current,
                      any_record=current is not None if any_record is None else any_record,
                      proposed=proposed, today=TODAY, **kw)


def refused(code, fn, *a, **kw):
    with pytest.raises(ChangeRefused) as e:
        fn(*a, **kw)
    assert e.value.code == code, e.value
    assert e.value.message
    return e.value


def test_u3_reason_table_matches_design():
    assert {r for r, v in JUKI_REASONS.items() if v.category == "記載"} == {"国内転入", "国外転入", "職権記載", "出生"}
    assert JUKI_REASONS["転居"].may_change == {"address", "oaza_code"}
    assert JUKI_REASONS["個人番号変更"].may_change == {"kojin_bango"}
    assert "kojin_bango" not in JUKI_REASONS["職権修正"].may_change
    assert set(JUKI_REASONS) == {"国内転入", "国外転入", "職権記載", "出生", "国内転出", "国外転出", "死亡", "職権消除",
                                 "転居", "軽微な修正", "職権修正", "誤記修正", "個人番号変更", "住民票コード変更",
                                 "旧氏記載", "旧氏変更", "旧氏削除"}


def test_u3_tennyu_for_current_resident_is_refused():
    cur = person()
    refused("ALREADY_CURRENT", juki, "国内転入", person(), current=cur)


def test_u3_tennyu_after_removal_is_allowed():
    out = juki("国内転入", person(), current=None, any_record=True)
    assert not out.deleted


def test_u3_shussei_needs_no_record_at_all_and_birth_date_equal_change_date():
    baby = person(birth_date=date(2026, 11, 1), change_date=date(2026, 11, 1), reason="出生")
    assert juki("出生", baby, current=None, any_record=False)
    refused("RECORD_EXISTS", juki, "出生", baby, current=None, any_record=True)
    refused("BIRTH_DATE_MISMATCH", juki, "出生", baby.replace(change_date=date(2026, 11, 2)), any_record=False)


def test_u3_tenkyo_rejects_name_change():
    cur = person()
    e = refused("FORBIDDEN_CHANGE", juki, "転居", person(address="三重県津市栄町1丁目", name="三重　次郎"), current=cur)
    assert e.field == "name"
    assert "三重" not in e.message  # the item is named, never its value


def test_u3_tenkyo_changes_address():
    cur = person()
    out = juki("転居", person(address="三重県津市栄町1丁目1番", reason="転居"), current=cur)
    assert out.address == "三重県津市栄町1丁目1番"


def test_u3_modification_without_change_is_refused():
    refused("NO_CHANGE", juki, "転居", person(), current=person())


def test_u3_removal_of_removed_person_is_refused():
    refused("ALREADY_REMOVED", juki, "死亡", person(), current=None, any_record=True)


def test_u3_removal_of_unknown_person_is_refused():
    refused("NOT_FOUND", juki, "国内転出", person(), current=None, any_record=False)


def test_u3_removal_may_change_nothing_and_sets_flags():
    cur = person()
    out = juki("死亡", person(reason="死亡"), current=cur)
    assert out.deleted and out.retention_flag
    refused("FORBIDDEN_CHANGE", juki, "死亡", person(address="三重県津市栄町1丁目"), current=cur)


def test_u1_u3_other_municipalitys_resident_is_refused():
    cur = person()
    refused("OTHER_MUNICIPALITY", juki, "転居", person(address="三重県四日市市諏訪町1番5号"), current=cur,
            sender=YOKKAICHI)


@pytest.mark.parametrize("reason,change", [
    ("職権修正", dict(name="三重　花子", sex="2")),
    ("誤記修正", dict(birth_date=date(1980, 4, 2))),
    ("個人番号変更", dict(kojin_bango="123456789018")),
    ("軽微な修正", dict(address="三重県津市広明町13番地の1")),
])
def test_u3_allowed_changes(reason, change):
    assert juki(reason, person(**change), current=person())


@pytest.mark.parametrize("reason,change,field", [
    ("個人番号変更", dict(name="三重　花子"), "name"),
    ("職権修正", dict(kojin_bango="123456789018"), "kojin_bango"),
    ("軽微な修正", dict(sex="2"), "sex"),
])
def test_u3_forbidden_changes(reason, change, field):
    assert refused("FORBIDDEN_CHANGE", juki, reason, person(**change), current=person()).field == field


def test_u3_former_surname_transitions():
    fs = FormerSurname("山田", "ヤマダ")
    refused("FORMER_SURNAME_STATE", juki, "旧氏変更", person(former_surname=fs), current=person())
    assert juki("旧氏記載", person(former_surname=fs), current=person()).former_surname == fs
    with_fs = person(former_surname=fs)
    assert juki("旧氏削除", person(), current=with_fs).former_surname is None
    assert juki("旧氏変更", person(former_surname=FormerSurname("川田", "カワダ")), current=with_fs)


def test_u3_juminhyo_code_change():
    cur = person()
    out = juki("住民票コード変更", person(), current=cur, new_juminhyo_code="12345678906")
    assert out.juminhyo_code == "12345678906"
    refused("NEW_CODE_REQUIRED", juki, "住民票コード変更", person(), current=cur)
    refused("NEW_CODE_IN_USE", juki, "住民票コード変更", person(), current=cur, new_juminhyo_code="12345678906",
            new_code_in_use=True)
    refused("NEW_CODE_UNEXPECTED", juki, "転居", person(address="x"), current=cur, new_juminhyo_code="12345678906")


def test_u3_dates_future_and_before_birth():
    refused("CHANGE_DATE_FUTURE", juki, "国内転入", person(change_date=date(2026, 11, 27)))
    refused("CHANGE_DATE_BEFORE_BIRTH", juki, "国内転入", person(change_date=date(1979, 1, 1)))


def test_u3_unknown_reason():
    refused("REASON_UNKNOWN", juki, "引越し", person())


# --- 附票 -----------------------------------------------------------------------------------

def fuhyo(**kw) -> FuhyoRecord:
    base = dict(juminhyo_code="52601815907", name="三重　太郎", name_kana="ミエ　タロウ", birth_date=date(1980, 4, 1),
                sex="1", address_municipality_code="131016", address="東京都千代田区霞が関2丁目1番",
                change_date=date(2026, 11, 20), fuhyo_municipality_code=TSU)
    base.update(kw)
    return FuhyoRecord(**base)


def fcheck(reason, proposed, current=None, any_record=None, sender=TSU, **kw):
    return check_fuhyo(reason, sender=sender, current=current,
                       any_record=current is not None if any_record is None else any_record,
                       proposed=proposed, today=TODAY, **kw)


def test_d2_u3_fuhyo_reason_table():
    assert set(FUHYO_REASONS) == {"記載", "住所変更", "国外転出", "職権修正", "住民票コード変更", "消除"}


def test_d2_u3_fuhyo_manager_must_be_sender():
    refused("FUHYO_MANAGER_MISMATCH", fcheck, "記載", fuhyo(), sender=YOKKAICHI)


def test_d2_u3_fuhyo_removal_of_removed_is_refused():
    refused("ALREADY_REMOVED", fcheck, "消除", fuhyo(status="消除"), current=None, any_record=True)


def test_d2_u3_fuhyo_removal_sets_status():
    out = fcheck("消除", fuhyo(status="消除"), current=fuhyo())
    assert out.status == "消除" and out.notification_kind == "消除"
    refused("FUHYO_STATUS_MISMATCH", fcheck, "消除", fuhyo(), current=fuhyo())


def test_d2_u3_fuhyo_abroad_clears_address_and_sets_last_address():
    cur = fuhyo()
    out = fcheck("国外転出", fuhyo(address=None, address_municipality_code=None, last_address=cur.address), current=cur)
    assert out.address is None and out.last_address
    refused("FUHYO_ABROAD_ADDRESS", fcheck, "国外転出", fuhyo(last_address="x"), current=cur)


def test_d2_u3_fuhyo_address_change_may_not_change_name():
    refused("FORBIDDEN_CHANGE", fcheck, "住所変更", fuhyo(name="三重　次郎", address="東京都港区芝公園1丁目"),
            current=fuhyo())


def test_d2_u3_fuhyo_address_change_needs_an_address_and_clears_last_address():
    abroad = fuhyo(address=None, address_municipality_code=None, last_address="三重県津市広明町13番地")
    back = fcheck("住所変更", fuhyo(last_address=None), current=abroad)
    assert back.address and back.last_address is None
    refused("FUHYO_ADDRESS_REQUIRED", fcheck, "住所変更", fuhyo(address=None, address_municipality_code=None),
            current=fuhyo())
    refused("FUHYO_ADDRESS_REQUIRED", fcheck, "住所変更",
            fuhyo(address="東京都港区芝公園1丁目", last_address="x"), current=fuhyo())
