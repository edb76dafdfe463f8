"""Error pages in the product's look, in the user's language."""

from __future__ import annotations

import sys

from django.db import OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from psycopg_pool import PoolTimeout


def _page(request, status: int, title: str, text: str):
    return render(request, "web/error.html", {"title": title, "text": text, "status": status}, status=status)


def _plain_page(status: int, title: str, text: str) -> HttpResponse:
    """For a server error or a busy database: nothing in it may need the database (no session, no
    site, no context processors), or a page about a missing connection would wait for one again."""
    html = render_to_string("web/plain_error.html", {"title": title, "text": text})
    return HttpResponse(html, status=status)


def bad_request(request, exception=None):
    # Mostly a stranger's malformed request (a foreign Host header, a broken upload): answered without the
    # session or the database, so that it costs little.
    return _plain_page(400, _("The request could not be understood"), _("Please go back and try again."))


def forbidden(request, exception=None):
    return _page(request, 403, _("Not allowed"), _("Your role in this site does not allow this page."))


def not_found(request, exception=None):
    return _page(request, 404, _("Not found"), _("This page does not exist in the site you are working in."))


def _busy_text(exc: BaseException | None) -> str | None:
    """What to tell a client whose request the database could not take in time (SQLite's one write
    lock, or no free connection in PostgreSQL's pool, under a burst); None for any other error."""
    if not isinstance(exc, OperationalError):
        return None
    if isinstance(exc.__cause__, PoolTimeout):  # a burst, or a database that does not answer at all
        return _("The server could not reach its database in time: too many requests at once, or the "
                 "database is unavailable. Nothing was saved; please try again in a moment.")
    if "locked" in str(exc):
        return _("Too many requests at the same moment. Nothing was saved; please try again.")
    return None


def server_error(request):
    # Django calls this inside its ``except`` block, so the exception is still at hand.
    text = _busy_text(sys.exc_info()[1])
    if text is not None:
        # Nothing was written (the transaction never began, or was rolled back): the client may simply
        # try again, which is what 503 with Retry-After says.
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": text}, status=503)
        else:
            response = _plain_page(503, _("Busy"), text)
        response["Retry-After"] = "2"
        return response
    return _plain_page(500, _("Something went wrong"), _("The error has been recorded. Please try again in a moment."))
