"""Fixed-point amounts: parsing what people type, checking what code passes, formatting for people."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import (
    MAX_AMOUNT,
    AmountNotANumber,
    AmountNotPositive,
    AmountOutOfRange,
    InvalidAmount,
    LedgerError,
    TooManyDecimals,
    check_amount,
    format_amount,
    parse_amount,
)


@pytest.mark.parametrize(
    ("text", "hundredths"),
    [
        ("1.5", 150),
        ("1,5", 150),
        ("１．５", 150),  # full-width digits and full stop
        ("１，５", 150),  # full-width comma
        ("１。５", 150),  # ideographic full stop
        ("3", 300),
        ("0.25", 25),
        ("0.01", 1),
        (".5", 50),
        ("2.", 200),
        ("+2", 200),
        ("  7.10  ", 710),
        ("1000000", MAX_AMOUNT),
        ("999999.99", MAX_AMOUNT - 1),
    ],
)
def test_parse_accepts_what_people_type(text, hundredths):
    assert parse_amount(text) == hundredths


@pytest.mark.parametrize(
    "text",
    ["NaN", "nan", "inf", "-inf", "Infinity", "1e3", "1E3", "0x10", "", "   ", "abc", "1.2.3", "--1", "1_000",
     "٣", "١٫٥", "½", "1.5 points", "None"],
)
def test_parse_refuses_what_is_not_a_plain_number(text):
    with pytest.raises(AmountNotANumber):
        parse_amount(text)


@pytest.mark.parametrize("text", ["1.234", "1,000", "0.001", "１．２３４", "-1.999"])
def test_parse_refuses_more_than_two_decimals(text):
    with pytest.raises(TooManyDecimals):
        parse_amount(text, allow_negative=True)


@pytest.mark.parametrize("text", ["0", "0.00", "-0", ".0", "-1.5", "-3"])
def test_parse_refuses_zero_and_negative_by_default(text):
    with pytest.raises(AmountNotPositive):
        parse_amount(text)


def test_parse_allows_zero_and_negative_only_when_asked():
    assert parse_amount("0", allow_zero=True) == 0
    assert parse_amount("-1.5", allow_negative=True) == -150
    assert parse_amount("-1,05", allow_negative=True) == -105
    with pytest.raises(AmountNotPositive):
        parse_amount("0", allow_negative=True)
    with pytest.raises(AmountNotPositive):
        parse_amount("-1", allow_zero=True)


@pytest.mark.parametrize("text", ["1000000.01", "1000001", "99999999999999999999999999999999", "-1000000.01"])
def test_parse_refuses_amounts_above_the_maximum(text):
    with pytest.raises(AmountOutOfRange):
        parse_amount(text, allow_negative=True)


@pytest.mark.parametrize("value", [1.5, 150, None, b"1.5", Decimal("1.5"), ["1"], True])
def test_parse_refuses_anything_but_text(value):
    with pytest.raises(AmountNotANumber):
        parse_amount(value)


@pytest.mark.parametrize("error", [AmountNotANumber, TooManyDecimals, AmountNotPositive, AmountOutOfRange])
def test_amount_errors_are_invalid_amounts_with_a_message(error):
    assert issubclass(error, InvalidAmount)
    assert issubclass(error, LedgerError)
    assert str(error()).strip()


def test_check_amount_passes_storable_amounts_through():
    assert check_amount(1) == 1
    assert check_amount(MAX_AMOUNT) == MAX_AMOUNT
    assert check_amount(-MAX_AMOUNT, allow_negative=True) == -MAX_AMOUNT
    assert check_amount(0, allow_zero=True) == 0


@pytest.mark.parametrize(
    ("value", "kwargs", "error"),
    [
        (MAX_AMOUNT + 1, {}, AmountOutOfRange),
        (-MAX_AMOUNT - 1, {"allow_negative": True}, AmountOutOfRange),
        (0, {}, AmountNotPositive),
        (-1, {}, AmountNotPositive),
        (-1, {"allow_zero": True}, AmountNotPositive),
        (1.0, {}, AmountNotANumber),
        (Decimal(1), {}, AmountNotANumber),
        ("1", {}, AmountNotANumber),
        (None, {}, AmountNotANumber),
        (True, {}, AmountNotANumber),
        (False, {"allow_zero": True}, AmountNotANumber),
    ],
)
def test_check_amount_refuses_with_named_errors(value, kwargs, error):
    with pytest.raises(error):
        check_amount(value, **kwargs)


@pytest.mark.parametrize(
    ("hundredths", "text"),
    [(150, "1.5"), (300, "3"), (25, "0.25"), (-105, "-1.05"), (0, "0"), (1, "0.01"), (10, "0.1"),
     (-50, "-0.5"), (MAX_AMOUNT, "1000000"), (100_001, "1000.01")],
)
def test_format_amount(hundredths, text):
    assert format_amount(hundredths) == text


@given(st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT).filter(lambda n: n != 0))
def test_format_then_parse_is_the_identity(n):
    assert parse_amount(format_amount(n), allow_negative=True) == n


@given(st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_format_uses_at_most_two_decimals_and_no_trailing_zero(n):
    text = format_amount(n)
    if "." in text:
        whole, frac = text.split(".")
        assert 1 <= len(frac) <= 2
        assert not frac.endswith("0")
    assert Decimal(text) * 100 == n
