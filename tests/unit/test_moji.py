"""D4: 外字 (outside JIS X 0208) are counted per item; text is kept exactly as received."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jukinet import moji
from jukinet.moji import count_gaiji, gaiji_flag, gaiji_pattern, is_jisx0208, segments

IVS = "\U000E0100"


def _jis_chars() -> str:
    """All JIS X 0208 characters, decoded from the 94×94 table with iso2022_jp."""
    out = []
    for row in range(0x21, 0x7F):
        for cell in range(0x21, 0x7F):
            try:
                out.append(bytes([0x1B, 0x24, 0x42, row, cell]).decode("iso2022_jp"))
            except UnicodeDecodeError:
                pass
    return "".join(out)


JIS = _jis_chars()
jis_text = st.text(alphabet=st.sampled_from(JIS + "abcXYZ019 -.,"), max_size=20)
selectors = st.one_of(st.characters(min_codepoint=0xFE00, max_codepoint=0xFE0F),
                      st.characters(min_codepoint=0xE0100, max_codepoint=0xE01EF))
mixed_text = st.text(
    alphabet=st.one_of(st.sampled_from(JIS[:400] + "髙﨑𠮷ｱ①"), selectors, st.characters()), max_size=20)
no_leading_vs = mixed_text.filter(lambda s: not s or not moji.is_variation_selector(s[0]))


def test_d4_jisx0208_has_6879_characters():
    assert len(JIS) == 6879
    assert all(is_jisx0208(c) for c in JIS)


@pytest.mark.parametrize("ch", ["髙", "﨑", "𠮷", "①", "Ⅰ", "㈱", "ｱ", "¥", "\u3099", IVS, "\uFE00"])
def test_d4_outside_jisx0208_is_gaiji(ch):
    assert not is_jisx0208(ch)
    assert count_gaiji(ch) == 1


@pytest.mark.parametrize("text", ["高", "崎", "吉", "山田", "葛", "凜", "熙", "ABC abc 123", "Ａ１ア", "東京都千代田区一丁目"])
def test_d4_jisx0208_and_ascii_are_not_gaiji(text):
    assert count_gaiji(text) == 0


def test_d4_euc_jp_would_wrongly_accept_jisx0212():
    # Python's euc_jp also carries JIS X 0212 (補助漢字), so it cannot be the JIS X 0208 test
    assert "丂".encode("euc_jp")  # JIS X 0212 補助漢字
    assert not is_jisx0208("丂")


def test_d4_alternate_unicode_mappings_of_jisx0208_are_not_gaiji():
    for alt, jis in moji.ALTERNATE_MAPPINGS.items():
        assert is_jisx0208(alt) and is_jisx0208(jis)
        if alt != "\u2014":  # EM DASH comes from the JIS X 0213 mapping, not cp932
            assert alt.encode("cp932") == jis.encode("shift_jis")
    assert count_gaiji("～〜－−∥‖￠￡￢—―") == 0


def test_d4_counts_ivs_sequence_as_one_gaiji():
    assert count_gaiji("葛") == 0
    assert count_gaiji("葛" + IVS) == 1
    assert count_gaiji("葛" + IVS + "飾区") == 1
    assert count_gaiji("辻" + "\U000E0101" + "\U000E0102") == 1
    assert segments("葛" + IVS + "飾") == ["葛" + IVS, "飾"]


def test_d4_examples():
    assert count_gaiji("髙橋") == 1
    assert count_gaiji("山﨑") == 1
    assert count_gaiji("𠮷田") == 1
    assert count_gaiji("髙﨑𠮷") == 3
    assert count_gaiji(None) == 0 and count_gaiji("") == 0


def test_d4_gaiji_flag():
    assert gaiji_flag("山田", "東京都", None) is False
    assert gaiji_flag("山田", "葛" + IVS + "飾区") is True
    assert gaiji_flag() is False


def test_d4_gaiji_pattern_is_name_address_last_address():
    assert moji.FUHYO_GAIJI_PATTERN_FIELDS == ("name", "address", "last_address")
    assert gaiji_pattern("山田", "東京都", None) == "000"
    assert gaiji_pattern("髙田", None, None) == "100"
    assert gaiji_pattern("山田", "髙松市", None) == "010"
    assert gaiji_pattern("山田", None, "𠮷野町") == "001"
    assert gaiji_pattern("髙田", "髙松市", "𠮷野町") == "111"


@given(mixed_text, mixed_text, mixed_text)
def test_d4_gaiji_pattern_agrees_with_flag_and_counts(a, b, c):
    p = gaiji_pattern(a, b, c)
    assert len(p) == 3 and set(p) <= {"0", "1"}
    assert (p != "000") == gaiji_flag(a, b, c)
    assert [x == "1" for x in p] == [count_gaiji(t) > 0 for t in (a, b, c)]


@given(jis_text)
def test_d4_pure_jisx0208_text_has_no_gaiji(s):
    assert count_gaiji(s) == 0
    assert not gaiji_flag(s)


@given(no_leading_vs, no_leading_vs)
def test_d4_count_is_additive(a, b):
    assert count_gaiji(a + b) == count_gaiji(a) + count_gaiji(b)


@given(mixed_text)
def test_d4_segments_keep_text_exactly(s):
    before = s
    segs = segments(s)
    assert "".join(segs) == s
    count_gaiji(s)
    gaiji_flag(s)
    assert s == before
    assert all(len(seg) == 1 or all(moji.is_variation_selector(c) for c in seg[1:]) for seg in segs)
    assert count_gaiji(s) <= len(segs)


def test_d4_text_is_never_normalised():
    s = "\uFA10\u2F00\uFA11葛" + IVS
    assert unicodedata.normalize("NFC", s) != s  # 塚 U+FA10 → 塚 U+585A
    assert unicodedata.normalize("NFKC", s) != s  # ⼀ U+2F00 → 一
    assert "".join(segments(s)) == s
    assert count_gaiji(s) == 4
    assert count_gaiji(unicodedata.normalize("NFC", s)) == 3  # normalising would hide a 外字
