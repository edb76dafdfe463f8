from django.urls import path

from rallypoint.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.reset_request, name="reset_request"),
    path("set-password/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="set_password"),
    path("profile/", views.profile, name="profile"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/end-all/", views.sessions_end_all, name="sessions_end_all"),
    path("sessions/<str:handle>/end/", views.session_end, name="session_end"),
    path("app-tokens/", views.app_token_issue, name="app_token_issue"),
    path("app-tokens/<int:token_id>/revoke/", views.app_token_revoke, name="app_token_revoke"),
]
