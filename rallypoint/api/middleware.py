"""What every request to the JSON API must be, checked before django-ninja sees it."""

from __future__ import annotations

from django.http import JsonResponse
from django.utils.translation import gettext as _

PREFIX = "/api/"
JSON_TYPES = ("application/json",)


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


class JsonBodyMiddleware:
    """A request to the API that carries a body must say it is JSON (``Content-Type: application/json``,
    with or without a charset); anything else is answered ``415``. Reading a form or a file as JSON would
    turn a client's mistake into a confusing error, or worse, into a half-understood request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(PREFIX) and request.method not in ("GET", "HEAD", "OPTIONS") \
                and _has_body(request) and _media_type(request.META.get("CONTENT_TYPE", "")) not in JSON_TYPES:
            return JsonResponse({"detail": _("Send the body as JSON, with the header "
                                             "“Content-Type: application/json”.")}, status=415)
        return self.get_response(request)


def _has_body(request) -> bool:
    length = request.META.get("CONTENT_LENGTH", "")
    if length:
        return length != "0"
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
