"""Web Push endpoints for the browser (push.js) and the service worker script at the root scope."""

from __future__ import annotations

import json
from functools import cache, wraps
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from rallypoint.accounts.sessions import HANDLE
from rallypoint.lib.text import NotText, clean_data
from rallypoint.lib.useragent import describe
from rallypoint.notify import actions
from rallypoint.notify.channels.webpush import vapid

MAX_BODY_BYTES = 8 * 1024


def _member_json(view):
    """Signed in and working in a site; answers in JSON (the callers are scripts, not people)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"detail": _("Please sign in first.")}, status=401)
        if request.site is None:
            return JsonResponse({"detail": _("You do not work in any site yet.")}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _json_body(request) -> dict:
    if len(request.body) > MAX_BODY_BYTES:
        raise ValidationError(_("The request is too large."))
    try:
        data = clean_data(json.loads(request.body or b"null"))
    except NotText:
        raise ValidationError(_("Text must be valid Unicode.")) from None
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(_("The request must be JSON.")) from None
    if not isinstance(data, dict):
        raise ValidationError(_("Send the browser's push subscription as a JSON object."))
    return data


def _problem(exc: Exception) -> JsonResponse:
    if isinstance(exc, PermissionDenied):
        return JsonResponse({"detail": str(exc) or _("You may not do this.")}, status=403)
    messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
    return JsonResponse({"detail": " ".join(messages)}, status=400)


@require_POST
@_member_json
def subscribe(request):
    """Store this browser's ``PushSubscription.toJSON()`` (plus an optional device label)."""
    try:
        data = _json_body(request)
        label = data.get("label") if isinstance(data.get("label"), str) else ""
        row = actions.subscribe(user=request.user, site=request.site, membership=request.membership,
                                subscription=data,
                                label=label or describe(request.headers.get("User-Agent", "")),
                                session_handle=request.session.get(HANDLE, ""))
    except (ValidationError, PermissionDenied) as exc:
        return _problem(exc)
    return JsonResponse({"subscribed": True, "device": row.label}, status=201)


@require_POST
@_member_json
def unsubscribe(request):
    """Forget this browser's subscription (the body names its endpoint)."""
    try:
        data = _json_body(request)
        removed = actions.unsubscribe(user=request.user, site=request.site, membership=request.membership,
                                      endpoint=data.get("endpoint"))
    except (ValidationError, PermissionDenied) as exc:
        return _problem(exc)
    return JsonResponse({"removed": removed})


@require_GET
def public_key(request):
    """The VAPID public key, which the browser passes to ``pushManager.subscribe`` (applicationServerKey)."""
    return JsonResponse({"key": vapid.application_server_key()})


@cache
def _read(path: str) -> bytes:
    return Path(path).read_bytes()


@require_GET
def service_worker(request):
    """``/sw.js``: served from the root so that its scope is the whole app."""
    path = finders.find("web/sw.js")
    if not path:
        raise Http404
    body = Path(path).read_bytes() if settings.DEBUG else _read(path)
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response
