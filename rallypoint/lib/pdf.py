"""A small PDF writer for lists on A4: headings, lines of text and tables, paginated, with the standard
Helvetica fonts (no font files, no dependency). Text is encoded as WinAnsi (cp1252), which covers German and
the other western European languages; a character outside it is written as "?".

Enough for a printable handover list; not a layout engine.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

A4 = (595.28, 841.89)
MARGIN = 48.0
_WIDTHS_REGULAR = 0.52  # average glyph width of Helvetica, in em: for wrapping, not for exact layout
_WIDTHS_BOLD = 0.57


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _clean(text: str) -> str:
    return "".join(ch if ch >= " " else " " for ch in str(text))


def wrap(text: str, size: float, width: float, bold: bool = False) -> list[str]:
    """Break ``text`` into lines that fit ``width`` points (by the average glyph width)."""
    per_char = size * (_WIDTHS_BOLD if bold else _WIDTHS_REGULAR)
    limit = max(1, int(width / per_char))
    lines: list[str] = []
    for paragraph in (_clean(part) for part in str(text).split("\n")):
        line = ""
        for word in paragraph.split(" "):
            while len(word) > limit:
                if line:
                    lines.append(line)
                    line = ""
                lines.append(word[:limit])
                word = word[limit:]
            candidate = f"{line} {word}" if line else word
            if len(candidate) <= limit:
                line = candidate
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


@dataclass
class Document:
    """Add content top to bottom; ``render()`` gives the PDF's bytes."""

    title: str = ""
    footer: str = ""
    pages: list[list[bytes]] = field(default_factory=list)
    y: float = 0.0

    def __post_init__(self) -> None:
        self._new_page()

    def _new_page(self) -> None:
        self.pages.append([])
        self.y = A4[1] - MARGIN

    def _room(self, height: float) -> None:
        if self.y - height < MARGIN + 20:
            self._new_page()

    def _text(self, x: float, text: str, size: float, bold: bool) -> None:
        font = "F2" if bold else "F1"
        self.pages[-1].append(b"BT /%s %.1f Tf %.2f %.2f Td (%s) Tj ET" % (
            font.encode(), size, x, self.y, _escape(text)))

    def heading(self, text: str, size: float = 16) -> None:
        lines = wrap(text, size, A4[0] - 2 * MARGIN, bold=True)
        self._room(size * 1.4 * len(lines) + 6)
        self.y -= 6
        for line in lines:
            self.y -= size * 1.3
            self._text(MARGIN, line, size, True)
        self.y -= 4

    def paragraph(self, text: str, size: float = 10.5, bold: bool = False) -> None:
        for line in wrap(text, size, A4[0] - 2 * MARGIN, bold):
            self._room(size * 1.4)
            self.y -= size * 1.4
            self._text(MARGIN, line, size, bold)

    def table(self, header: list[str], rows: list[list[str]], widths: list[float], size: float = 10) -> None:
        """Columns of ``widths`` (fractions of the text width); cells wrap; the header repeats on a new page."""
        total = A4[0] - 2 * MARGIN
        columns = [w * total for w in widths]

        def draw(cells: list[str], bold: bool) -> None:
            wrapped = [wrap(c, size, col - 6, bold) for c, col in zip(cells, columns, strict=True)]
            height = max(len(w) for w in wrapped) * size * 1.3 + 4
            if self.y - height < MARGIN + 20:
                self._new_page()
                if not bold:
                    draw(header, True)
            top = self.y
            x = MARGIN
            for lines, col in zip(wrapped, columns, strict=True):
                self.y = top
                for line in lines:
                    self.y -= size * 1.3
                    self._text(x, line, size, bold)
                x += col
            self.y = top - height
            self.pages[-1].append(b"0.6 G 0.5 w %.2f %.2f m %.2f %.2f l S" % (MARGIN, self.y + 2, MARGIN + total,
                                                                             self.y + 2))

        draw(header, True)
        for row in rows:
            draw(row, False)
        self.y -= 6

    def render(self) -> bytes:
        objects: list[bytes] = []

        def add(body: bytes) -> int:
            objects.append(body)
            return len(objects)

        catalog = add(b"")  # filled below
        pages_id = add(b"")
        regular = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        bold = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
        kids = []
        for number, content in enumerate(self.pages, start=1):
            foot = f"{self.footer} — {number}/{len(self.pages)}" if self.footer else f"{number}/{len(self.pages)}"
            stream = b"\n".join([*content, b"BT /F1 8 Tf %.2f %.2f Td (%s) Tj ET" % (MARGIN, MARGIN - 16,
                                                                                     _escape(foot))])
            packed = zlib.compress(stream)
            content_id = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed))
            kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /Font << "
                            b"/F1 %d 0 R /F2 %d 0 R >> >> /Contents %d 0 R >>" % (
                                pages_id, A4[0], A4[1], regular, bold, content_id)))
        objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id
        objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
            b" ".join(b"%d 0 R" % k for k in kids), len(kids))
        info = add(b"<< /Title (%s) /Producer (Rallypoint) >>" % _escape(self.title))
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(objects) + 1, catalog, info, xref)
        return bytes(out)
