"""Fixed-point amounts: integers in hundredths of a point (1.5 points == 150)."""

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from .errors import AmountNotANumber, AmountNotPositive, AmountOutOfRange, TooManyDecimals

#: The largest amount a single entry may carry: one million points.
MAX_AMOUNT = 100_000_000

_NUMBER = re.compile(r"[+-]?(\d+)(?:\.(\d*))?|[+-]?\.(\d+)")


def parse_amount(text, *, allow_zero=False, allow_negative=False):
    """Parse "1.5", "1,5" or full-width "１．５" into hundredths of a point."""
    if not isinstance(text, str):
        raise AmountNotANumber()
    # NFKC folds full-width digits, the ideographic full stop stays: map it too.
    cleaned = unicodedata.normalize("NFKC", text).strip().replace("。", ".").replace(",", ".")
    cleaned = cleaned.replace(" ", "")
    match = _NUMBER.fullmatch(cleaned)
    if not match or not cleaned.isascii():
        raise AmountNotANumber()
    decimals = match.group(2) or match.group(3) or ""
    if len(decimals) > 2:
        raise TooManyDecimals()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise AmountNotANumber() from None
    hundredths = int(value * 100)
    return check_amount(hundredths, allow_zero=allow_zero, allow_negative=allow_negative)


def check_amount(hundredths, *, allow_zero=False, allow_negative=False):
    """Return hundredths unchanged if it is a storable amount, else raise a named error."""
    if isinstance(hundredths, bool) or not isinstance(hundredths, int):
        raise AmountNotANumber()
    if abs(hundredths) > MAX_AMOUNT:
        raise AmountOutOfRange()
    if hundredths == 0 and not allow_zero:
        raise AmountNotPositive()
    if hundredths < 0 and not allow_negative:
        raise AmountNotPositive()
    return hundredths


def format_amount(hundredths):
    """Format hundredths for people: 150 -> "1.5", 300 -> "3", 25 -> "0.25"."""
    sign = "-" if hundredths < 0 else ""
    whole, frac = divmod(abs(hundredths), 100)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:02d}".rstrip("0")
