from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "rallypoint.accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from rallypoint.accounts import messages, signals  # noqa: F401 - receivers and message kinds
