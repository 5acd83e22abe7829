"""D5: 清音化かな氏名 — one search key for readings a person would call the same (標準仕様書 §2.1.2)."""

import jaconv
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jukinet import kana
from jukinet.errors import JukinetError
from jukinet.kana import is_kana, seion, validate_kana

# Every full-width katakana letter that has a hiragana and a half-width spelling.
KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30F5)) + "ー"  # ァ..ヴ (ヵヶ have no half-width)
kata_names = st.text(alphabet=KATAKANA, min_size=0, max_size=12)
any_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(KATAKANA + "ヵヶヷヸヹヺヽヾゝゞ゛゜ﾞﾟ\u3099\u309a ー　-‐―−ｰ\t"),
        st.sampled_from("ぁあいうゔゎゐゑをんがぱ"),
        st.characters(min_codepoint=0xFF61, max_codepoint=0xFF9F),  # half-width kana block
        st.characters(min_codepoint=0x31F0, max_codepoint=0x31FF),
        st.characters(),
    ),
    max_size=15,
)
SPACES_AND_BARS = " \u3000\tー-ｰ―‐\u2010\u2011\u2012\u2013\u2014\u2015\u2212－"


def half(s: str) -> str:
    return jaconv.z2h(s, kana=True, ascii=False, digit=False)


# --- properties ---------------------------------------------------------------------------------


@given(any_text)
def test_d5_seion_idempotent(s):
    assert seion(seion(s)) == seion(s)


@given(kata_names)
def test_d5_seion_hiragana_katakana_halfwidth_fold_together(s):
    assert seion(jaconv.kata2hira(s)) == seion(s) == seion(half(s))


@given(kata_names, st.lists(st.tuples(st.integers(0, 12), st.sampled_from(SPACES_AND_BARS)), max_size=5))
def test_d5_seion_ignores_spaces_and_long_vowel_marks(s, inserts):
    t = s
    for pos, ch in inserts:
        t = t[:pos] + ch + t[pos:]
    assert seion(t) == seion(s.replace("ー", ""))


@given(any_text)
def test_d5_seion_output_is_folded(s):
    key = seion(s)
    for bad in "ァィゥェォッャュョヮヵヶヲヰヱワヴガパヂヅー \u3000":
        assert bad not in key
    for i in range(1, len(key)):
        assert not (key[i] == "ウ" and key[i - 1] in "オコソトノホモヨロ")


# --- the table, one rule at a time ---------------------------------------------------------------


def test_d5_seion_width_and_script_fold_to_fullwidth_katakana():
    assert seion("がっこう") == seion("ガッコウ") == seion("ｶﾞｯｺｳ") == "カツコオ"
    assert seion("ｶﾞ") == seion("ガ") == "カ"  # half-width dakuten joins like NFKC


@pytest.mark.parametrize(
    "voiced, plain",
    [("ガギグゲゴ", "カキクケコ"), ("ザジズゼゾ", "サシスセソ"), ("ダデド", "タテト"),
     ("バビブベボ", "ハヒフヘホ"), ("パピプペポ", "ハヒフヘホ")],
)
def test_d5_seion_dakuten_to_seion(voiced, plain):
    assert seion(voiced) == seion(plain)
    assert seion(jaconv.kata2hira(voiced)) == seion(plain)


def test_d5_seion_di_du_fold_to_shi_su():
    assert seion("ヂ") == seion("ジ") == "シ"
    assert seion("ヅ") == seion("ズ") == "ス"
    assert seion("ちぢみ") == seion("チシミ")
    assert seion("つづき") == seion("ツスキ")


def test_d5_seion_vu_row_folds_to_ha_row():
    assert seion("ヴァイオリン") == seion("バイオリン")
    for v, b in [("ヴァ", "バ"), ("ヴィ", "ビ"), ("ヴ", "ブ"), ("ヴェ", "ベ"), ("ヴォ", "ボ")]:
        assert seion(v) == seion(b)
    assert [seion(v) for v in ("ヴァ", "ヴィ", "ヴ", "ヴェ", "ヴォ")] == ["ハ", "ヒ", "フ", "ヘ", "ホ"]
    assert seion("ｳﾞｧ") == seion("ゔぁ") == seion("ウ゛ァ") == "ハ"
    assert seion("ヷヸヹヺ") == seion("ヴァヴィヴェヴォ")


def test_d5_seion_small_kana_to_large():
    assert seion("ッャュョァィゥェォヵヶ") == "ツヤユヨアイウエオカケ"
    assert seion("ヮ") == seion("ワ") == "ハ"
    assert seion("ㇰㇱㇲㇳ") == "クシスト"
    assert seion("キャット") == seion("キヤツト")


def test_d5_seion_wo_wi_we():
    assert seion("ヲ") == seion("オ") == "オ"
    assert seion("ヰ") == seion("イ") == "イ"
    assert seion("ヱ") == seion("エ") == "エ"
    assert seion("ゐゑを") == "イエオ"


def test_d5_seion_wa_folds_to_ha():
    assert seion("ワ") == "ハ"
    assert seion("ワタナベ") == seion("ハタナベ") == "ハタナヘ"
    assert "ワ" not in seion("わゎヮﾜ")


def test_d5_seion_drops_long_vowel_marks_and_spaces():
    assert seion("タナカ タロー") == seion("タナカ　タロ") == seion("ﾀﾅｶ\tﾀﾛｰ") == "タナカタロ"
    for mark in "ー―－‐ｰ-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff70":
        assert seion(f"ス{mark}ス") == "スス"
    # ー is dropped, not read as the vowel: タロー ≠ タロウ
    assert seion("タロー") != seion("タロウ")


def test_d5_seion_u_after_o_dan_is_o():
    assert seion("トウ") == seion("トオ") == "トオ"
    assert seion("キョウ") == seion("キヨオ") == "キヨオ"
    assert seion("ゴウ") == "コオ"  # after 濁音 folding
    assert seion("ドウ") == "トオ"
    assert seion("ボウ") == seion("ポウ") == seion("ホオ")
    assert seion("ヲウ") == "オオ"
    assert seion("ヴォウ") == "ホオ"
    assert seion("ソウ ノウ モウ ヨウ ロウ コウ") == "ソオノオモオヨオロオコオ"
    assert seion("カウ") == "カウ"  # ア段: kept
    assert seion("ウタ") == "ウタ"  # first position: kept


def test_d5_seion_u_rule_applies_across_the_space():
    assert seion("サトウ タロウ") == "サトオタロオ"
    assert seion("コ ウメ") == "コオメ"  # documented: over the whole name, after spaces go


def test_d5_seion_examples_from_the_brief():
    assert seion("がっこう") == seion("カツコオ")
    assert seion("ﾀﾅｶ ﾀﾛｳ") == seion("たなか たろう") == seion("タナカタロオ") == "タナカタロオ"
    assert seion("ﾀﾅｶ ﾀﾛｳ") != seion("タナカタロー")


def test_d5_seion_non_kana_pass_through():
    assert seion("山田") == "山田"
    assert seion("John 山田 ﾀﾛｳ") == "John山田タロオ"
    assert seion("ジョン・スミス") == "シヨン・スミス"


def test_d5_seion_iteration_marks_repeat_the_kana():
    assert seion("いすゞ") == seion("イスズ") == "イスス"
    assert seion("ササヽ") == "サササ"
    assert seion("ヽア") == "ヽア"  # nothing to repeat: kept


# --- validate_kana / is_kana --------------------------------------------------------------------


def test_d5_validate_kana_returns_fullwidth_katakana():
    assert validate_kana("やまだ たろう") == "ヤマダ\u3000タロウ"
    assert validate_kana("ﾔﾏﾀﾞ　ﾀﾛｰ") == "ヤマダ\u3000タロー"
    assert validate_kana("ヤマダタロウ") == "ヤマダタロウ"
    assert validate_kana("  ヤマダ \t タロウ ") == "ヤマダ\u3000タロウ"
    assert validate_kana("ﾜﾞｲﾝ") == "ヷイン"


@pytest.mark.parametrize("bad", ["山田 太郎", "ヤマダ1", "YAMADA", "ヤマダ・タロウ", "", "　", "ー", "゛ア", None])
def test_d5_validate_kana_refuses_non_kana(bad):
    with pytest.raises(JukinetError) as e:
        validate_kana(bad)
    assert e.value.code == "KANA_FORMAT"
    assert e.value.field == "name_kana"
    assert e.value.message == "ふりがなはカタカナで入力してください。"
    assert not is_kana(bad)


@given(kata_names)
def test_d5_validate_kana_accepts_any_kana_and_keeps_the_key(s):
    if not s.replace("ー", ""):
        return
    v = validate_kana(jaconv.kata2hira(s))
    assert is_kana(s) and is_kana(half(s))
    assert validate_kana(v) == v
    assert seion(v) == seion(s)


def test_d5_validate_kana_error_never_repeats_the_input():
    with pytest.raises(JukinetError) as e:
        validate_kana("山田太郎")
    assert "山田" not in str(e.value) and "山田" not in str(e.value.as_dict())


def test_d5_kana_exports():
    assert set(kana.__all__) >= {"seion", "is_kana", "validate_kana"}
