from django.urls import path

from rallypoint.accounts import profile_views, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.reset_request, name="reset_request"),
    path("set-password/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="set_password"),
    path("profile/", profile_views.profile, name="profile"),
    path("profile/delete/", profile_views.delete_account, name="delete_account"),
    path("profile/my-data/", profile_views.my_data, name="my_data"),
    path("profile/my-data.json", profile_views.my_data_json, name="my_data_json"),
    path("profile/password/", profile_views.password_change, name="password_change"),
    path("profile/messenger/", profile_views.messenger_add, name="messenger_add"),
    path("profile/notifications/", profile_views.notifications, name="notifications"),
    path("profile/messenger/<int:address_id>/remove/", profile_views.messenger_remove, name="messenger_remove"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/end-all/", views.sessions_end_all, name="sessions_end_all"),
    path("sessions/<str:handle>/end/", views.session_end, name="session_end"),
    path("app-tokens/", views.app_token_issue, name="app_token_issue"),
    path("app-tokens/<int:token_id>/revoke/", views.app_token_revoke, name="app_token_revoke"),
]
