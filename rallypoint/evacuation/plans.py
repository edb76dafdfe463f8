"""Floor plans: an uploaded file checked by its content and re-encoded, so that what is served is
an image this code wrote, never the bytes someone uploaded.

PNG, JPEG and PDF are accepted (a PDF's first page is rendered with pdfium). The result is a PNG
(drawings, rendered PDFs) or a JPEG (photos), without metadata (no EXIF location, no comments, no
colour profile), at most ``MAX_SIDE`` pixels on its longest side.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import pypdfium2
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 4000
#: A file that claims more pixels than this is refused before it is decoded (a "decompression bomb").
MAX_PIXELS = 60_000_000
#: A PDF page is rendered at this resolution, or smaller to fit ``MAX_SIDE``.
PDF_DPI = 200
ACCEPT = "image/png,image/jpeg,application/pdf,.png,.jpg,.jpeg,.pdf"


@dataclass(frozen=True)
class Plan:
    content: bytes
    content_type: str
    width: int
    height: int


def _refuse(message: str) -> ValidationError:
    return ValidationError({"file": message})


def read_plan(content: bytes) -> Plan:
    """The plan made from an uploaded file's bytes; ``ValidationError`` (field ``file``) if they are not a
    PNG, JPEG or PDF that can be read."""
    if len(content) > MAX_BYTES:
        raise _refuse(_("The file is larger than 10 MB."))
    if not content:
        raise _refuse(_("The file is empty."))
    if content.startswith(b"%PDF-"):
        return _encode(_render_pdf(content), photo=False)
    image, kind = _open_image(content)
    return _encode(image, photo=kind == "JPEG")


def _not_readable() -> ValidationError:
    return _refuse(_("This file is not a PNG, JPEG or PDF file that can be read. Export the plan as PNG, "
                     "JPEG or PDF and upload it again."))


def _too_large() -> ValidationError:
    return _refuse(_("The image has too many pixels (at most %(n)d million). Export it smaller and upload it "
                     "again.") % {"n": MAX_PIXELS // 1_000_000})


def _open_image(content: bytes) -> tuple[Image.Image, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS decides, below
            image = Image.open(io.BytesIO(content), formats=["PNG", "JPEG"])
        if image.width * image.height > MAX_PIXELS:
            raise _too_large()
        image.load()
        return ImageOps.exif_transpose(image), image.format  # a phone photo stands the way it was taken
    except ValidationError:
        raise
    except Image.DecompressionBombError:
        raise _too_large() from None
    except (OSError, SyntaxError, ValueError):
        # Pillow says "cannot identify image file", "truncated", "broken data stream" …
        raise _not_readable() from None


def _render_pdf(content: bytes) -> Image.Image:
    try:
        pdf = pypdfium2.PdfDocument(content)
    except pypdfium2.PdfiumError:
        raise _refuse(_("This PDF file cannot be read (it may be damaged or protected by a password).")) from None
    try:
        if len(pdf) == 0:
            raise _refuse(_("This PDF file has no pages."))
        page = pdf[0]
        width, height = page.get_size()  # in points, 1/72 inch
        if width <= 0 or height <= 0:
            raise _not_readable()
        scale = min(PDF_DPI / 72, MAX_SIDE / max(width, height))
        return page.render(scale=scale, fill_color=(255, 255, 255, 255)).to_pil()
    except pypdfium2.PdfiumError:
        raise _not_readable() from None
    finally:
        pdf.close()


def _encode(image: Image.Image, *, photo: bool) -> Plan:
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    if photo:
        image = image.convert("RGB")
    elif image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    image.info = {}  # no EXIF, comments, text chunks or colour profile travel on
    out = io.BytesIO()
    if photo:
        image.save(out, "JPEG", quality=85, optimize=True)
    else:
        image.save(out, "PNG", optimize=image.width * image.height <= 4_000_000)
    return Plan(out.getvalue(), "image/jpeg" if photo else "image/png", image.width, image.height)
