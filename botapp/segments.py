"""SMS segment arithmetic: what a reply costs a resident's phone.

GSM-7 texts take 160 characters in one segment and 153 per segment when split; a text with any
character outside GSM-7 (any Chinese character) is sent as UCS-2: 70 in one segment, 67 when
split. Characters of the GSM-7 extension table (such as € or [) take two places.
"""

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM7_BASIC)
_EXTENSION = frozenset(GSM7_EXTENSION)

#: The most segments any reply may take (the issue's budget).
MAX_SEGMENTS = 2


def is_gsm7(text):
    """Tell whether every character of `text` can be sent in the GSM-7 alphabet."""
    return all(ch in _BASIC or ch in _EXTENSION for ch in text)


def units(text):
    """The length of `text` in its encoding's units (septets for GSM-7, UTF-16 code units else)."""
    if is_gsm7(text):
        return sum(2 if ch in _EXTENSION else 1 for ch in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text):
    """How many SMS segments `text` takes."""
    if not text:
        return 1
    single, multi = (160, 153) if is_gsm7(text) else (70, 67)
    length = units(text)
    return 1 if length <= single else -(-length // multi)


def budget(text, max_segments=MAX_SEGMENTS):
    """How many units fit in `max_segments` segments for the encoding `text` needs."""
    single, multi = (160, 153) if is_gsm7(text) else (70, 67)
    return single if max_segments == 1 else multi * max_segments


def fits(text, max_segments=MAX_SEGMENTS):
    """Tell whether `text` fits within `max_segments` segments."""
    return segments(text) <= max_segments
