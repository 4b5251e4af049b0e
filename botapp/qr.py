"""QR code images (qrcode): PNG (Pillow) for counter codes in Telegram, SVG for printed cards."""

import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.svg import SvgPathImage


def qr_png(text, box_size=10):
    """A PNG of `text` as a QR code, big enough for a phone screen and a counter scanner."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    code.add_data(text)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(text):
    """An SVG of `text` as a QR code, for printed member cards (sharp at any size)."""
    image = qrcode.make(text, image_factory=SvgPathImage, error_correction=ERROR_CORRECT_M, border=2)
    return image.to_string(encoding="unicode")
