from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RealtimeConfig(AppConfig):
    name = "rallypoint.realtime"
    verbose_name = _("Real-time stream")

    def ready(self) -> None:
        from rallypoint.realtime import signals  # noqa: F401  # connects the receivers
