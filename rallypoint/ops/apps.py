from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    name = "rallypoint.ops"
    verbose_name = _("Operations")

    def ready(self):
        from rallypoint.ops import report_messages  # noqa: F401 - a kind of outbox message
