from __future__ import annotations

from django.middleware.csrf import CsrfViewMiddleware
from django.utils import translation

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


class SecurityHeadersMiddleware:
    """Content-Security-Policy without inline script, and no caching of pages with personal data."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(self)")
        if not request.path.startswith("/static/"):
            response["Cache-Control"] = "no-store"
        return response


class UserLanguageMiddleware:
    """The language follows the user's own setting first, then the browser (LocaleMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)


class CsrfMiddleware(CsrfViewMiddleware):
    """Django's CSRF protection, made to work with ``Referrer-Policy: no-referrer``.

    Under that policy browsers send ``Origin: null`` on form posts, which Django
    rejects. The browser's own ``Sec-Fetch-Site: same-origin`` header (which no
    page can forge) then proves the same origin; the CSRF token is still checked.
    """

    def _origin_verified(self, request):
        if request.META.get("HTTP_ORIGIN") == "null" and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin":
            return True
        return super()._origin_verified(request)
