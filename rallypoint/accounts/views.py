"""Sign-in, sign-out, setting a password from an invitation link, and one's own profile."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from rallypoint.accounts.models import User


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label=gettext_lazy("E-mail"),
                                widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}))


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The invitation / reset link. Django moves the token out of the URL on first use."""

    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("accounts:login")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password is set. Sign in with your e-mail and new password."))
        return response


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["language"]


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Changes saved."))
        response = redirect("accounts:profile")
        response.delete_cookie("rp_language")
        return response
    return render(request, "accounts/profile.html", {"form": form})
