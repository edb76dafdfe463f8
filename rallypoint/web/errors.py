"""Error pages in the product's look, in the user's language."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.translation import gettext as _


def _page(request, status: int, title: str, text: str):
    return render(request, "web/error.html", {"title": title, "text": text, "status": status}, status=status)


def bad_request(request, exception=None):
    return _page(request, 400, _("The request could not be understood"),
                 _("Please go back and try again."))


def forbidden(request, exception=None):
    return _page(request, 403, _("Not allowed"), _("Your role in this site does not allow this page."))


def not_found(request, exception=None):
    return _page(request, 404, _("Not found"), _("This page does not exist in the site you are working in."))


def server_error(request):
    return _page(request, 500, _("Something went wrong"),
                 _("The error has been recorded. Please try again in a moment."))
