"""Second-factor pages: the second step of signing in, setting up factors, and the organisation policy."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.accounts import mfa, throttle
from rallypoint.accounts.mfa_models import OrganizationSecurity, Passkey, TotpDevice
from rallypoint.audit import approvals
from rallypoint.audit.actions import record_security_event, request_ip
from rallypoint.audit.models import SecurityEvent
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required

Kind = SecurityEvent.Kind


class TotpCodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"), max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": "[0-9 ]*", "autofocus": True, "spellcheck": "false"}))


class RecoveryCodeForm(forms.Form):
    recovery_code = forms.CharField(
        label=gettext_lazy("Recovery code"), max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}))


class PasskeyNameForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name of the passkey"), max_length=80, required=False,
                           help_text=gettext_lazy("For example “Work laptop” or “Security key”."))


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(label=gettext_lazy("Password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password",
                                                                 "autofocus": True}))


class PolicyForm(forms.Form):
    second_factor = forms.ChoiceField(label=gettext_lazy("Second factor"),
                                      choices=OrganizationSecurity.SecondFactor.choices, widget=forms.RadioSelect)


def _safe_next(request, url: str) -> str:
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _ask_to_confirm(request, next_url: str) -> HttpResponse:
    text = _("Please confirm it is you before you change security settings.")
    if request.headers.get("accept", "").startswith("application/json"):
        return JsonResponse({"detail": text}, status=403)
    messages.info(request, text)
    return redirect(f"{reverse('mfa:confirm')}?{urlencode({'next': next_url})}")


def recent_authentication_required(view):
    """Changing factors needs a full sign-in within the last minutes (ASVS: re-authenticate first)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not mfa.recently_authenticated(request):
            return _ask_to_confirm(request, reverse("mfa:setup"))
        return view(request, *args, **kwargs)

    return login_required(wrapper)


# --- The second step of signing in ------------------------------------------------------------------


def _verify_context(request, pending, **extra) -> dict:
    user = pending.user
    return {
        "has_totp": TotpDevice.objects.filter(user=user, confirmed=True).exists(),
        "has_passkey": Passkey.objects.filter(user=user).exists(),
        "totp_form": extra.pop("totp_form", None) or TotpCodeForm(),
        "recovery_form": extra.pop("recovery_form", None) or RecoveryCodeForm(),
        "reauthenticating": request.user.is_authenticated,
        **extra,
    }


def _check_second_factor(request, pending) -> tuple[str, bool, dict]:
    method = request.POST.get("method", "")
    forms_ = {}
    if method == "totp":
        forms_["totp_form"] = form = TotpCodeForm(request.POST)
        ok = form.is_valid() and mfa.verify_totp(pending.user, form.cleaned_data["code"])
    elif method == "recovery":
        forms_["recovery_form"] = form = RecoveryCodeForm(request.POST)
        ok = form.is_valid() and mfa.use_recovery_code(pending.user, form.cleaned_data["recovery_code"])
    elif method == "passkey":
        ok = mfa.verify_passkey(request, pending.user, request.POST.get("credential", ""))
    else:
        ok = False
    return method, ok, forms_


def _finish(request, pending, method: str):
    user = pending.user
    mfa.clear_pending(request)
    if request.user.is_authenticated and request.user.pk == user.pk:  # a confirmation, not a sign-in
        mfa.mark_reauthenticated(request)
    else:
        login(request, user, backend=pending.backend)  # a new session key (see signals.py)
        record_security_event(Kind.SIGN_IN, request=request, user=user, detail={"second_factor": method})
    if method == "recovery":
        left = user.recovery_codes.filter(used_at__isnull=True).count()
        messages.warning(request, _("You signed in with a recovery code. Codes left: %(left)d. Make new ones "
                                    "when few are left.") % {"left": left})
    return redirect(_safe_next(request, pending.next))


@require_http_methods(["GET", "POST"])
def verify(request):
    """The second step: a TOTP code, a recovery code or a passkey, after a right password."""
    had_pending = mfa.had_pending(request)
    pending = mfa.pending_sign_in(request)
    if pending is None:
        if had_pending:
            messages.info(request, _("The sign-in took too long. Please sign in again."))
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        return redirect(settings.LOGIN_URL)
    if request.method == "GET":
        return render(request, "accounts/mfa/verify.html", _verify_context(request, pending))
    keys = throttle.keys_for(pending.user.email, request_ip(request), person_id=pending.user.pk,
                             device=throttle.device_of(request, pending.user))
    wait = throttle.begin(keys)  # counted before the code is checked
    if wait:
        record_security_event(Kind.SIGN_IN_THROTTLED, request=request, user=pending.user)
        return render(request, "accounts/mfa/verify.html", _verify_context(request, pending, wait=wait), status=429)
    method, ok, forms_ = _check_second_factor(request, pending)
    if ok:
        throttle.succeeded(keys)
        response = _finish(request, pending, method)
        throttle.remember_device(response, pending.user)
        return response
    wait = throttle.wait_seconds(keys)
    record_security_event(Kind.SIGN_IN_FAILED, request=request, user=pending.user,
                          detail={"second_factor": method[:16]})
    if throttle.second_factor_failures(keys) >= throttle.SECOND_FACTOR_TRIES:
        mfa.clear_pending(request)  # too many wrong codes: the password (and the bot check) again
        messages.warning(request, _("Too many wrong codes. Please sign in again."))
        return redirect(settings.LOGIN_URL)
    context = _verify_context(request, pending, wait=wait, failed=True, **forms_)
    return render(request, "accounts/mfa/verify.html", context, status=400)


@require_POST
def verify_passkey_options(request):
    pending = mfa.pending_sign_in(request)
    if pending is None or not Passkey.objects.filter(user=pending.user).exists():
        return JsonResponse({"detail": _("The sign-in took too long. Please sign in again.")}, status=403)
    return HttpResponse(mfa.authentication_options(request, pending.user), content_type="application/json")


# --- Setting up factors --------------------------------------------------------------------------------


@login_required
@require_GET
def setup(request):
    factors = mfa.factors_of(request.user)
    return render(request, "accounts/mfa/setup.html", {
        "factors": factors, "required": mfa.must_enroll(request.user), "recent": mfa.recently_authenticated(request),
        "passkey_form": PasskeyNameForm(), "recovery_total": mfa.RECOVERY_CODE_COUNT})


@login_required
@require_http_methods(["GET", "POST"])
def confirm(request):
    """Confirm it is you (password, then the second factor if you have one) before changing factors."""
    form = PasswordConfirmForm(request.POST or None)
    user = request.user
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next") or reverse("mfa:setup"))
    context = {"form": form, "next": next_url}
    if request.method == "POST":
        keys = throttle.keys_for(user.email, request_ip(request), device=throttle.device_of(request, user))
        wait = throttle.begin(keys) if form.is_valid() else 0  # counted before the password is checked
        if wait:
            record_security_event(Kind.SIGN_IN_THROTTLED, request=request, user=user)
            return render(request, "accounts/mfa/confirm.html", {**context, "wait": wait}, status=429)
        if form.is_valid() and user.check_password(form.cleaned_data["password"]):
            response = mfa.start_second_step(request, user, next_url)
            if response is not None:
                throttle.take_back(keys)
                return response
            throttle.succeeded(keys)
            mfa.mark_reauthenticated(request)
            return redirect(next_url)
        if form.is_valid():  # a password was given, and it is not the right one
            context["wait"] = throttle.wait_seconds(keys)
            record_security_event(Kind.SIGN_IN_FAILED, request=request, user=user, detail={"confirmation": True})
            form.add_error(None, _("The password is not right. Please try again."))
    return render(request, "accounts/mfa/confirm.html", context, status=400 if form.errors else 200)


def _totp_page(request, device, form=None, status=200):
    return render(request, "accounts/mfa/totp.html", {
        "device": device, "qr": mfa.qr_code_data_uri(device), "secret": mfa.grouped_secret(device),
        "form": form or TotpCodeForm()}, status=status)


def _after_adding(request, text: str):
    """The first factor brings recovery codes along; otherwise back to the overview."""
    if not request.user.recovery_codes.filter(used_at__isnull=True).exists():
        codes = mfa.new_recovery_codes(request.user, request=request)
        messages.success(request, text)
        return render(request, "accounts/mfa/recovery_codes.html", {"codes": codes})
    messages.success(request, text)
    return redirect("mfa:setup")


@recent_authentication_required
@require_http_methods(["GET", "POST"])
def totp(request):
    """GET: the QR code of the device being set up. POST start: a new one. POST confirm: check a code."""
    if request.method == "POST" and request.POST.get("action") == "start":
        if TotpDevice.objects.filter(user=request.user, confirmed=True).exists():
            messages.info(request, _("You already use an authenticator app. Remove it first to set up another."))
            return redirect("mfa:setup")
        mfa.new_totp_device(request.user)
        return redirect("mfa:totp")
    device = mfa.unconfirmed_totp_device(request.user)
    if device is None:
        return redirect("mfa:setup")
    if request.method == "GET":
        return _totp_page(request, device)
    form = TotpCodeForm(request.POST)
    if form.is_valid() and mfa.confirm_totp(device, form.cleaned_data["code"], request=request):
        return _after_adding(request, _("The authenticator app is set up."))
    form.errors.clear()
    form.add_error("code", _("That code is not right. Enter the current code from the app."))
    return _totp_page(request, device, form, status=400)


@recent_authentication_required
@require_POST
def passkey_options(request):
    return HttpResponse(mfa.registration_options(request), content_type="application/json")


@recent_authentication_required
@require_POST
def passkey_add(request):
    form = PasskeyNameForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else ""
    try:
        mfa.add_passkey(request, request.POST.get("credential", ""), name)
    except mfa.SecondFactorError as error:
        messages.warning(request, str(error))
        return redirect("mfa:setup")
    return _after_adding(request, _("The passkey is added."))


@recent_authentication_required
@require_POST
def recovery_codes(request):
    if not mfa.needs_second_step(request.user):
        messages.info(request, _("Set up an authenticator app or a passkey first."))
        return redirect("mfa:setup")
    codes = mfa.new_recovery_codes(request.user, request=request)
    return render(request, "accounts/mfa/recovery_codes.html", {"codes": codes})


def _remove(request, factor) -> HttpResponse:
    try:
        mfa.remove_factor(factor, request=request)
    except mfa.SecondFactorError as error:
        messages.warning(request, str(error))
    else:
        messages.success(request, _("The second factor is removed."))
    return redirect("mfa:setup")


@recent_authentication_required
@require_POST
def totp_remove(request, device_id: int):
    device = TotpDevice.objects.filter(user=request.user, pk=device_id, confirmed=True).first()
    if device is None:
        raise Http404
    return _remove(request, device)


@recent_authentication_required
@require_POST
def passkey_remove(request, passkey_id: int):
    passkey = Passkey.objects.filter(user=request.user, pk=passkey_id).first()
    if passkey is None:
        raise Http404
    return _remove(request, passkey)


# --- The organisation's policy ----------------------------------------------------------------------


@site_permission_required(Perm.MANAGE_SUPER_ADMINS)
@require_http_methods(["GET", "POST"])
def policy(request):
    """Super-admins choose who in their organisation needs a second factor."""
    organization = request.site.organization
    form = PolicyForm(request.POST or None, initial={"second_factor": mfa.policy_of(organization)})
    if request.method == "POST":
        if not mfa.recently_authenticated(request):
            return _ask_to_confirm(request, reverse("mfa:policy"))
        if form.is_valid():
            value = form.cleaned_data["second_factor"]
            if value != mfa.policy_of(organization) and approvals.required(
                    organization, approvals.Process.CHANGE_SECOND_FACTOR_RULE):
                approvals.request(process=approvals.Process.CHANGE_SECOND_FACTOR_RULE, actor=request.user,
                                  organization=organization, site=None, subject={"second_factor": value})
                messages.success(request, _("A second Super-admin must approve the change. They have been told."))
                return redirect("audit:approvals")
            mfa.set_policy(organization=organization, value=value, actor=request.user)
            messages.success(request, _("Changes saved."))
            return redirect("mfa:policy")
    return render(request, "accounts/mfa/policy.html", {"form": form, "organization": organization},
                  status=400 if form.errors else 200)
