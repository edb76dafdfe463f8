"""Second-factor pages, included at ``accounts/second-factor/``."""

from django.urls import path

from rallypoint.accounts import mfa_views as views

app_name = "mfa"
urlpatterns = [
    path("verify/", views.verify, name="verify"),
    path("verify/passkey-options/", views.verify_passkey_options, name="verify_passkey_options"),
    path("setup/", views.setup, name="setup"),
    path("setup/confirm/", views.confirm, name="confirm"),
    path("setup/totp/", views.totp, name="totp"),
    path("setup/totp/<int:device_id>/remove/", views.totp_remove, name="totp_remove"),
    path("setup/passkey-options/", views.passkey_options, name="passkey_options"),
    path("setup/passkeys/", views.passkey_add, name="passkey_add"),
    path("setup/passkeys/<int:passkey_id>/remove/", views.passkey_remove, name="passkey_remove"),
    path("setup/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("policy/", views.policy, name="policy"),
]
