"""Administration of the site's API keys: list, create, change scopes, rotate, revoke.

A new or rotated key is shown once, in the answer to the POST that made it: never
in a URL, never kept in the session, never again.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from rallypoint.integrations import actions
from rallypoint.integrations.forms import ApiKeyForm
from rallypoint.integrations.models import ApiKey
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required
from rallypoint.web.forms import add_validation_errors as _form_errors


def get_api_key_for_request(request, key_id: int) -> ApiKey:
    try:
        return ApiKey.objects.for_site(request.site).select_related("site__organization").get(pk=key_id)
    except ApiKey.DoesNotExist:
        raise Http404 from None


def _show_secret(request, key: ApiKey, raw: str, *, rotated: bool):
    return render(request, "integrations/api_key_secret.html", {"key": key, "secret": raw, "rotated": rotated})


@require_GET
@site_permission_required(Perm.MANAGE_API_KEYS)
def api_key_list(request):
    keys = ApiKey.objects.for_site(request.site).prefetch_related("scenarios").select_related("created_by")
    return render(request, "integrations/api_key_list.html", {"keys": keys})


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_API_KEYS)
def api_key_create(request):
    form = ApiKeyForm(request.POST or None, site=request.site)
    if request.method == "POST" and form.is_valid():
        try:
            key, raw = actions.create_api_key(actor=request.user, site=request.site, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return _show_secret(request, key, raw, rotated=False)
    return render(request, "integrations/api_key_form.html", {"form": form, "key": None},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_API_KEYS)
def api_key_edit(request, key_id: int):
    key = get_api_key_for_request(request, key_id)
    if request.method == "POST" and not key.is_active:
        messages.error(request, _("This key has been revoked."))
        return redirect("integrations:api_keys")
    selected = list(key.scenarios.all())
    form = ApiKeyForm(request.POST or None, site=request.site, selected=selected,
                      initial={"name": key.name, "scenarios": selected, "reports_presence": key.reports_presence})
    if request.method == "POST" and form.is_valid():
        try:
            actions.update_api_key(actor=request.user, key=key, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("API key saved."))
            return redirect("integrations:api_keys")
    return render(request, "integrations/api_key_form.html", {"form": form, "key": key},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_API_KEYS)
def api_key_rotate(request, key_id: int):
    """GET asks for confirmation; POST replaces the secret and shows the new one once."""
    key = get_api_key_for_request(request, key_id)
    if request.method == "POST":
        try:
            key, raw = actions.rotate_api_key(actor=request.user, key=key)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("integrations:api_keys")
        return _show_secret(request, key, raw, rotated=True)
    return render(request, "integrations/api_key_confirm.html", {"key": key, "action": "rotate"})


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_API_KEYS)
def api_key_revoke(request, key_id: int):
    """GET asks for confirmation; POST revokes the key for good."""
    key = get_api_key_for_request(request, key_id)
    if request.method == "POST":
        try:
            actions.revoke_api_key(actor=request.user, key=key)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("The API key no longer works."))
        return redirect("integrations:api_keys")
    return render(request, "integrations/api_key_confirm.html", {"key": key, "action": "revoke"})
