"""Template context shared by every page."""

from __future__ import annotations


def csp_nonce(request) -> dict[str, str]:
    """``{{ csp_nonce }}``: this response's Content-Security-Policy nonce (set by SecurityHeadersMiddleware)."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
