from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PeopleConfig(AppConfig):
    name = "rallypoint.people"
    verbose_name = _("People")

    def ready(self) -> None:
        from rallypoint.people import review_messages  # noqa: F401 - a kind of outbox message
