"""QR code images (qrcode + Pillow) for counter codes."""

import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M


def qr_png(text, box_size=10):
    """A PNG of `text` as a QR code, big enough for a phone screen and a counter scanner."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    code.add_data(text)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()
