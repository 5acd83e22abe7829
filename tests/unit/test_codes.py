"""D3: 住民票コード, 個人番号 and 全国地方公共団体コード are validated with their check digits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.jp import in_ as stdnum_in

from jukinet import codes

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_d3_juminhyo_code_check_digit_roundtrip(first10):
    full = first10 + codes.juminhyo_code_check_digit(first10)
    assert codes.validate_juminhyo_code(full) == full


@given(st.text(alphabet="0123456789", min_size=10, max_size=10), st.integers(0, 9))
def test_d3_juminhyo_code_any_other_check_digit_is_refused(first10, d):
    check = codes.juminhyo_code_check_digit(first10)
    if str(d) != check:
        with pytest.raises(codes.InvalidChecksum) as e:
            codes.validate_juminhyo_code(first10 + str(d))
        assert e.value.code == "JUMINHYO_CODE_CHECKSUM"


def test_d3_juminhyo_code_rule_remainder_le_1_gives_zero():
    # weights 5,4,3,2,7,6,5,4,3,2: "0000000003" → 3*2=6 → 11-6=5; "1000000000" → 5 → 6
    assert codes.juminhyo_code_check_digit("0000000003") == "5"
    assert codes.juminhyo_code_check_digit("1000000000") == "6"
    for first10 in ("0000000000", "2000000001"):  # sums 0 and 12 → remainders 0 and 1
        assert codes.juminhyo_code_check_digit(first10) == "0"


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_d3_kojin_bango_agrees_with_python_stdnum(first11):
    full = first11 + codes.kojin_bango_check_digit(first11)
    assert stdnum_in.is_valid(full)
    assert codes.validate_kojin_bango(full) == full


@pytest.mark.parametrize("code,name", [("242021", "四日市市"), ("242080", "名張市"), ("240001", "三重県"),
                                       ("242012", "津市"), ("131016", "千代田区")])
def test_d3_lg_code_known_bodies(code, name):
    assert codes.validate_lg_code(code) == code


@pytest.mark.parametrize("value,exc,code", [
    ("24202", codes.InvalidLength, "LG_CODE_LENGTH"),
    ("2420211", codes.InvalidLength, "LG_CODE_LENGTH"),
    ("24202a", codes.InvalidFormat, "LG_CODE_FORMAT"),
    ("２４２０２１", codes.InvalidFormat, "LG_CODE_FORMAT"),
    ("242022", codes.InvalidChecksum, "LG_CODE_CHECKSUM"),
    ("", codes.InvalidLength, "LG_CODE_LENGTH"),
])
def test_d3_q2_lg_code_errors_have_stable_codes_and_japanese_messages(value, exc, code):
    with pytest.raises(exc) as e:
        codes.validate_lg_code(value)
    assert e.value.code == code
    assert "全国地方公共団体コード" in e.value.message
    assert value == "" or value not in e.value.message  # never echoes the input


@pytest.mark.parametrize("fn,value,code", [
    (codes.validate_juminhyo_code, "5260181590", "JUMINHYO_CODE_LENGTH"),
    (codes.validate_juminhyo_code, "5260181590X", "JUMINHYO_CODE_FORMAT"),
    (codes.validate_kojin_bango, "62527601895", "KOJIN_BANGO_LENGTH"),
    (codes.validate_kojin_bango, "625276018958", "KOJIN_BANGO_CHECKSUM"),
    (codes.validate_kojin_bango, "6252760189５7", "KOJIN_BANGO_FORMAT"),
])
def test_d3_q2_each_failure_has_its_own_error(fn, value, code):
    with pytest.raises(codes.InvalidCode) as e:
        fn(value)
    assert e.value.code == code
    assert e.value.as_dict()["message"]
    assert value not in str(e.value)


@given(st.text(max_size=20))
def test_d3_validators_never_raise_anything_but_invalid_code(s):
    for fn in (codes.validate_juminhyo_code, codes.validate_kojin_bango, codes.validate_lg_code):
        try:
            fn(s)
        except codes.InvalidCode:
            pass
