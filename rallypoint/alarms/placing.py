"""How an alarm's place reads, from the structure picked and the free text."""

from __future__ import annotations


def place_text(building, floor, zone, text: str) -> str:
    """ "Building A · 1st floor · West wing — by the stairs"; any part may be missing."""
    picked = " · ".join(part.name for part in (building, floor, zone) if part is not None)
    return f"{picked} — {text}" if picked and text else (picked or text)
