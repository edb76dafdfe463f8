"""Sign-in, sign-out, password links, one's own profile and sessions."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from rallypoint.accounts import apptokens, mfa, pow, throttle
from rallypoint.accounts.messages import PASSWORD_RESET
from rallypoint.accounts.models import AppToken, User
from rallypoint.accounts.sessions import active_sessions, end_sessions, forget_on_device
from rallypoint.accounts.tokens import AnyPasswordLink
from rallypoint.audit.actions import record_security_event, request_ip
from rallypoint.audit.models import SecurityEvent
from rallypoint.notify import outbox

Kind = SecurityEvent.Kind
POW_FAILED = gettext_lazy("The automatic check against bots did not succeed. Please wait until it is done and "
                          "send the form again.")


class ProofOfWorkMixin:
    """Views whose POST must carry a solved, unused proof-of-work challenge."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "pow_challenge": pow.new_challenge()}

    def pow_refused(self, request):
        """None when the proof of work is good; otherwise the form again, with a new challenge."""
        if pow.verify(request.POST.get(pow.FIELD, "")):
            return None
        return self.render_to_response(self.get_context_data(form=self.get_form(), pow_failed=POW_FAILED),
                                       status=400)


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label=gettext_lazy("E-mail"),
                                widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}))
    error_messages = {
        "invalid_login": gettext_lazy("E-mail or password is not right. Please try again."),
        "inactive": gettext_lazy("This account is deactivated."),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]  # Django sized it after the index column; it takes an address
        username.max_length = 254
        username.widget.attrs["maxlength"] = "254"


class LoginView(ProofOfWorkMixin, auth_views.LoginView):
    """Sign-in with growing waits after failures (see :mod:`rallypoint.accounts.throttle`)."""

    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    _counted: throttle.Keys | None = None  # the attempt counted before the password was checked

    def _user(self) -> User | None:
        return User.objects.by_email(self.request.POST.get("username", "")).first()

    def _keys(self, user: User | None) -> throttle.Keys:
        return throttle.keys_for(self.request.POST.get("username", ""), request_ip(self.request),
                                 device=throttle.device_of(self.request, user))

    def post(self, request, *args, **kwargs):
        refused = self.pow_refused(request)
        if refused is not None:
            return refused
        if request.POST.get("username") and request.POST.get("password"):
            user = self._user()
            keys = self._keys(user)
            wait = throttle.begin(keys)  # counted before the password is checked
            if wait:
                record_security_event(Kind.SIGN_IN_THROTTLED, request=request, user=user)
                context = self.get_context_data(form=self.get_form(), wait=wait)  # keeps the address typed
                return self.render_to_response(context, status=429)
            self._counted = keys
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        if self._counted is not None:
            wait = throttle.wait_seconds(self._counted)
            record_security_event(Kind.SIGN_IN_FAILED, request=self.request, user=self._user())
            return self.render_to_response(self.get_context_data(form=form, wait=wait), status=400)
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def form_valid(self, form):
        # With a second factor, the password alone signs nobody in: the attempt is taken back, but the
        # counters start over only after the second step, so re-entering the password cannot reset the
        # count of wrong codes.
        user = form.get_user()
        response = mfa.start_second_step(self.request, user, self.get_success_url())
        if response is not None:
            throttle.take_back(self._counted)
            return response
        throttle.succeeded(self._counted)
        response = super().form_valid(form)  # signs in, gives the session a new key (see signals.py)
        record_security_event(Kind.SIGN_IN, request=self.request, user=user)
        throttle.remember_device(response, user)
        return response


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            record_security_event(Kind.SIGN_OUT, request=request, user=request.user)
        return forget_on_device(super().post(request, *args, **kwargs))


def password_changed(request, user, *, actor=None, keep_session_key: str | None = None) -> None:
    """After a new password: it is recorded, and every session (but ``keep_session_key``, the one that changed
    it) and every app token of the person ends: whoever knew the old password is out everywhere."""
    record_security_event(Kind.PASSWORD_CHANGED, request=request, user=user, actor=actor)
    end_sessions(user, except_key=keep_session_key)
    apptokens.revoke(AppToken.objects.filter(user=user), actor=user, request=request)


class SetPasswordView(ProofOfWorkMixin, auth_views.PasswordResetConfirmView):
    """The invitation / reset link. The token leaves the URL on first use (Django redirects)."""

    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("accounts:login")
    token_generator = AnyPasswordLink()

    def post(self, request, *args, **kwargs):
        if not self.validlink:  # dispatch() found no valid link: the page says so
            return super().post(request, *args, **kwargs)
        return self.pow_refused(request) or super().post(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.user
        record_security_event(Kind.RESET_USED, request=self.request, user=user)
        password_changed(self.request, user)
        messages.success(self.request, _("Your password is set. Sign in with your e-mail and new password."))
        return response


class ResetRequestForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail"),
                             widget=forms.EmailInput(attrs={"autocomplete": "username"}))


@require_http_methods(["GET", "POST"])
def reset_request(request):
    """Ask for a password link. The answer is the same whether or not the address is known."""
    form = ResetRequestForm(request.POST or None)
    pow_failed = request.method == "POST" and not pow.verify(request.POST.get(pow.FIELD, ""))
    if pow_failed:
        context = {"form": form, "pow_failed": POW_FAILED, "pow_challenge": pow.new_challenge()}
        return render(request, "accounts/reset_request.html", context, status=400)
    if request.method == "POST" and form.is_valid():
        _queue_reset_link(request, form.cleaned_data["email"])
        messages.info(request, _("If the address belongs to an account, a link is on its way. "
                                 "It works once and for 24 hours."))
        return redirect("accounts:login")
    return render(request, "accounts/reset_request.html", {"form": form, "pow_challenge": pow.new_challenge()},
                  status=400 if form.errors else 200)


def _queue_reset_link(request, email: str) -> None:
    """The same work whether or not the address has an account: one look-up, one security event, one row in
    the outbox (skipped when there is nobody to send to), so the answer's time tells nothing. The worker
    checks the person still has access, files the event under their organisation and sends the e-mail.
    Support accounts too: support sets its password this way (until the customer deletes it)."""
    user = User.objects.by_email(email).filter(is_active=True).first()
    with transaction.atomic():
        event = SecurityEvent.objects.create(kind=Kind.RESET_REQUESTED, user=user, client_ip=request_ip(request))
        outbox.queue(PASSWORD_RESET, user=user, sendable=user is not None,
                     context={"language": translation.get_language(), "event": event.pk})


@login_required
def sessions(request):
    rows = active_sessions(request.user)
    return render(request, "accounts/sessions.html", {
        "sessions": rows, "current": request.session.session_key, "tokens": apptokens.live_tokens(request.user)
        .select_related("site"), "token_form": AppTokenForm(),
        "idle": settings.SESSION_COOKIE_AGE // 60, "max": settings.SESSION_MAX_AGE_HOURS,
        "token_days": settings.APP_TOKEN_IDLE_DAYS})


@login_required
@require_POST
def session_end(request, handle: str):
    row = active_sessions(request.user).filter(handle=handle).first()
    if row is None or not handle:
        raise Http404
    row.delete()
    record_security_event(Kind.SESSION_REVOKED, request=request, user=request.user, actor=request.user)
    if row.session_key == request.session.session_key:
        logout(request)
        return forget_on_device(redirect("accounts:login"))
    messages.success(request, _("That session is signed out."))
    return redirect("accounts:sessions")


@login_required
@require_POST
def sessions_end_all(request):
    user = request.user
    record_security_event(Kind.SESSION_REVOKED, request=request, user=user, actor=user,
                          detail={"all": True})
    apptokens.revoke(AppToken.objects.filter(user=user), actor=user, request=request)
    end_sessions(user)
    logout(request)
    messages.success(request, _("You are signed out on every device."))
    return forget_on_device(redirect("accounts:login"))


class AppTokenForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Device name"), max_length=80,
                           help_text=gettext_lazy("For example “Phone of the caretaker”."))


@login_required
@require_POST
def app_token_issue(request):
    """Issue an app token for the current site; the token is shown on this page once, never in a URL."""
    if not mfa.recently_authenticated(request):  # a stolen session must not mint a long-lived token
        return redirect(f"{reverse('mfa:confirm')}?{urlencode({'next': reverse('accounts:sessions')})}")
    form = AppTokenForm(request.POST)
    if request.site is None or not form.is_valid():
        messages.error(request, _("Name the device the token is for."))
        return redirect("accounts:sessions")
    row, token = apptokens.issue(user=request.user, site=request.site, name=form.cleaned_data["name"],
                                 request=request)
    return render(request, "accounts/app_token.html", {"row": row, "token": token})


@login_required
@require_POST
def app_token_revoke(request, token_id: int):
    tokens = AppToken.objects.filter(user=request.user, pk=token_id)
    if not tokens.exists():
        raise Http404
    apptokens.revoke(tokens, actor=request.user, request=request)
    messages.success(request, _("The app token no longer works."))
    return redirect("accounts:sessions")
