from __future__ import annotations

import secrets

from django.http import HttpResponseBadRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import translation
from django.utils.translation import gettext

from rallypoint.lib import text

# script-src: only scripts whose tag carries this response's nonce run (plus what they load,
# 'strict-dynamic'). 'self' is kept purely as a fallback for browsers without CSP level 3: a
# browser that understands 'strict-dynamic' ignores 'self' (and any host source) in script-src,
# so modern browsers enforce nonce-only; CSP1-only browsers, which know neither nonces nor
# 'strict-dynamic', still get "same-origin scripts only" instead of no script policy at all.
# Never 'unsafe-inline' or 'unsafe-eval'.
CSP_TEMPLATE = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'strict-dynamic'; style-src 'self'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def content_security_policy(nonce: str) -> str:
    return CSP_TEMPLATE.format(nonce=nonce)


class SecurityHeadersMiddleware:
    """A strict, nonce-based Content-Security-Policy, and no caching of pages with personal data.

    Every request gets a fresh nonce in ``request.csp_nonce``; templates see it as
    ``{{ csp_nonce }}`` (``rallypoint.web.context_processors.csp_nonce``) and the header
    carries the same value.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", content_security_policy(request.csp_nonce))
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(self)")
        # A view may set its own Cache-Control for a response without personal data (a floor plan:
        # ``private``, so that no shared cache keeps it); every other page is not stored at all.
        if not request.path.startswith("/static/") and not getattr(response, "rp_cache_control", False):
            response["Cache-Control"] = "no-store"
        return response


# Query-string parameter names (compared case-insensitively) that are refused with 400 on any
# request: query strings end up in access logs, proxy logs, browser history, bookmarks and
# Referer headers, so credentials, tokens, one-time codes, session identifiers, signatures
# and contact data must travel in a POST body or a header instead (OWASP ASVS L2; seed: "no
# data in HTTP GET parameters"). Only the query string is checked, never the form body.
SENSITIVE_QUERY_PARAMETERS = frozenset({
    # passwords
    "password", "passwd", "pass", "pwd",
    # tokens, keys and one-time codes
    "token", "access_token", "refresh_token", "id_token", "api_key", "apikey", "key", "secret",
    "otp", "code", "totp",
    # sessions and CSRF
    "session", "sessionid", "csrfmiddlewaretoken",
    # personal contact data
    "email", "e-mail", "mail", "phone",
    # authorisation and signatures
    "auth", "authorization", "signature", "sig",
})


class SensitiveQueryParameterMiddleware:
    """Answers 400 to any request whose query string names a credential, token or contact field.

    Neither the query string nor the values are logged or echoed; the answer only names
    the refused parameter(s) in their canonical, lower-case spelling from the list above.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("QUERY_STRING"):
            refused = sorted({name.strip().lower() for name in request.GET} & SENSITIVE_QUERY_PARAMETERS)
            if refused:
                # This runs before LocaleMiddleware: pick the language from the request ourselves.
                with translation.override(translation.get_language_from_request(request)):
                    text = gettext(
                        "Bad request: credentials, tokens and personal data must not be sent in the URL "
                        "(refused query parameter: %(names)s). Send them in the body of a POST request."
                    ) % {"names": ", ".join(refused)}
                return HttpResponseBadRequest(text + "\n", content_type="text/plain; charset=utf-8")
        return self.get_response(request)


FORM_TYPE = "application/x-www-form-urlencoded"


def _clean_querydict(data):
    """``data`` without control characters in its keys and values (the same object when it has none)."""
    if not any(text.has_control(key) or any(text.has_control(v) for v in values) for key, values in data.lists()):
        return data
    clean = data.copy()
    for key in list(clean):
        values = [text.strip_controls(v) for v in clean.getlist(key)]
        del clean[key]
        clean.setlist(text.strip_controls(key), values)
    clean._mutable = False
    return clean


class CleanInputMiddleware:
    """Query strings and form fields without control characters (see :mod:`rallypoint.lib.text`), for
    every view: a NUL typed into a search box must not make PostgreSQL refuse the query with a 500, nor a
    stray byte an alarm. (Form data is decoded with replacement characters, so it holds no surrogates; the
    JSON API cleans its bodies in its parser.) A ``multipart/form-data`` body (an upload) is left to the
    view: reading it here would consume it; Django's form fields refuse a NUL in it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("QUERY_STRING"):
            request.GET = _clean_querydict(request.GET)
        if request.method == "POST" and request.content_type == FORM_TYPE:
            request.POST = _clean_querydict(request.POST)  # the body stays readable (it is read first)
        return self.get_response(request)


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
