from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "rallypoint.audit"
    verbose_name = _("Audit trail")

    def ready(self):
        from rallypoint.audit import approval_messages  # noqa: F401 - a kind of outbox message
