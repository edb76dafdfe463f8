"""My account: one's own name and phone in this site, language, password and messenger addresses."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.accounts.forms import validate_phone
from rallypoint.accounts.models import User
from rallypoint.accounts.sessions import forget_on_device
from rallypoint.accounts.views import password_changed
from rallypoint.alarms.models import CHANNEL_CHOICES
from rallypoint.audit.actions import record_security_event
from rallypoint.audit.models import SecurityEvent
from rallypoint.notify.addresses import (
    MUTABLE_CHANNELS,
    add_messenger_address,
    remove_messenger_address,
    service_of,
    set_muted_channels,
)
from rallypoint.notify.models import ChannelMute, MessengerAddress
from rallypoint.people import subject_access
from rallypoint.people.actions import update_own_details
from rallypoint.people.forget import forget_account
from rallypoint.web.forms import add_validation_errors


class LanguageForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["language"]


class DetailsForm(forms.Form):
    full_name = forms.CharField(label=gettext_lazy("Your name"), max_length=120)
    phone = forms.CharField(label=gettext_lazy("Your phone"), max_length=30, required=False,
                            validators=[validate_phone],
                            help_text=gettext_lazy("For text messages and calls in an alarm."))


class MessengerForm(forms.Form):
    label = forms.CharField(label=gettext_lazy("Label"), max_length=120, required=False,
                            help_text=gettext_lazy("For example “Telegram”."))
    url = forms.CharField(label=gettext_lazy("Apprise address"), max_length=1000,
                          help_text=gettext_lazy("The address of your messenger in Apprise's form, e.g. "
                                                 "tgram://bottoken/ChatID. It is stored encrypted and not shown "
                                                 "again."))


class PasswordForm(PasswordChangeForm):
    """Django's form, without its autofocus: the page opens on one's details, not in the password field."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["old_password"].widget.attrs.pop("autofocus", None)


def _page(request, *, language=None, details=None, password=None, messenger=None, status=200):
    membership = request.membership
    if details is None and membership is not None:
        details = DetailsForm(initial={"full_name": membership.full_name, "phone": membership.phone},
                              prefix="details")
    addresses = [{"row": a, "service": service_of(a.url)}
                 for a in MessengerAddress.objects.filter(membership=membership)] if membership else []
    muted = set(ChannelMute.objects.filter(membership=membership).values_list("channel", flat=True)) if membership \
        else set()
    labels = dict(CHANNEL_CHOICES)
    channels = [{"value": c, "label": labels[c], "on": c not in muted} for c in MUTABLE_CHANNELS]
    return render(request, "accounts/profile.html", {
        "form": language or LanguageForm(instance=request.user), "details": details,
        "password_form": password or PasswordForm(request.user, prefix="password"),
        "messenger_form": messenger or MessengerForm(prefix="messenger"), "addresses": addresses,
        "channels": channels,
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    if request.method != "POST":
        return _page(request)
    language = LanguageForm(request.POST, instance=request.user)
    details = DetailsForm(request.POST, prefix="details") if request.membership is not None else None
    if language.is_valid() and (details is None or details.is_valid()):
        try:
            if details is not None:
                update_own_details(user=request.user, membership=request.membership, **details.cleaned_data)
            language.save(commit=False).save(update_fields=["language"])
        except ValidationError as exc:
            add_validation_errors(details, exc)
        else:
            messages.success(request, _("Changes saved."))
            response = redirect("accounts:profile")
            response.delete_cookie("rp_language")
            return response
    return _page(request, language=language, details=details, status=400)


@login_required
@require_POST
def password_change(request):
    """A new password: the current one confirms it is the person; every other session and app token ends."""
    form = PasswordForm(request.user, request.POST, prefix="password")
    if not form.is_valid():
        return _page(request, password=form, status=400)
    user = form.save()
    update_session_auth_hash(request, user)  # this session stays, under a new key
    password_changed(request, user, actor=user, keep_session_key=request.session.session_key)
    messages.success(request, _("Your password is changed. Your other devices are signed out."))
    return redirect("accounts:profile")


@login_required
@require_POST
def messenger_add(request):
    if request.membership is None:
        raise Http404
    form = MessengerForm(request.POST, prefix="messenger")
    if form.is_valid():
        try:
            add_messenger_address(actor=request.user, membership=request.membership, **form.cleaned_data)
        except ValidationError as exc:
            add_validation_errors(form, exc)
        else:
            messages.success(request, _("Messenger address added."))
            return redirect("accounts:profile")
    return _page(request, messenger=form, status=400)


@login_required
@require_POST
def messenger_remove(request, address_id: int):
    address = MessengerAddress.objects.select_related("membership__site__organization").filter(
        pk=address_id, membership=request.membership, membership__user=request.user).first()
    if address is None:
        raise Http404
    remove_messenger_address(actor=request.user, address=address)
    messages.success(request, _("Messenger address removed."))
    return redirect("accounts:profile")


class DeleteAccountForm(forms.Form):
    """Re-authentication and a confirmation: deleting oneself cannot be undone."""

    password = forms.CharField(label=gettext_lazy("Your password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    confirm = forms.BooleanField(label=gettext_lazy("I understand that my data is deleted for good and that I can "
                                                    "no longer sign in."))

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(_("That is not your password."), code="wrong_password")
        return password


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request):
    """A person deletes their own data (GDPR Art. 17): after their password and a confirmation, every site
    forgets them (people.forget) and the browser is told to keep nothing."""
    user = request.user
    if user.is_support:
        raise Http404  # the operator's support account is removed by the customer, not by itself
    form = DeleteAccountForm(user, request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            forget_account(user=user, why="own wish")
            logout(request)
            request.membership = request.site = None  # gone: the page below shows nothing of them
            return forget_on_device(render(request, "accounts/deleted.html"))
        if form.has_error("password", "wrong_password"):
            record_security_event(SecurityEvent.Kind.SIGN_IN_FAILED, request=request, user=user)
    sites = [m.site for m in user.memberships.select_related("site")]
    return render(request, "accounts/delete_account.html", {"form": form, "sites": sites,
                                                          "forgotten_days": settings.FORGOTTEN_DAYS},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def my_data(request):
    """Everything Rallypoint holds about me (Art. 15), readable; the same as JSON below (Art. 20)."""
    data = subject_access.collect(user=request.user)
    return render(request, "accounts/my_data.html", {"sections": subject_access.readable(data)})


@login_required
@require_GET
def my_data_json(request):
    data = subject_access.collect(user=request.user)
    response = HttpResponse(subject_access.as_json(data), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="my-rallypoint-data.json"'
    return response


@login_required
@require_POST
def notifications(request):
    """Which channels carry information messages to me (alarms always use every channel)."""
    if request.membership is None:
        raise Http404
    wanted = set(request.POST.getlist("channel"))
    try:
        set_muted_channels(actor=request.user, membership=request.membership,
                           channels=[c for c in MUTABLE_CHANNELS if c not in wanted])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Changes saved."))
    return redirect("accounts:profile")
