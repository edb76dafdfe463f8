from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from rallypoint.lib.tls import ensure_local_certificates, trust_instructions
from rallypoint.ops.server import serve
from rallypoint.tenants.demo import read_credentials, refresh_demo_presence, seed_demo
from rallypoint.tenants.management.commands.demo import print_credentials
from rallypoint.tenants.models import Organization


class Command(BaseCommand):
    help = "Migrate, seed the demo on first start, and serve the web app (HTTPS) with the worker in-process."

    def handle(self, *args, **options):
        if settings.TLS:
            self.prepare_tls()
        call_command("migrate", interactive=False, verbosity=0)
        if settings.DEMO:
            rows = seed_demo()
            if rows is None:
                rows = read_credentials()
                refresh_demo_presence()
            if rows:
                print_credentials(self.stdout, rows)
        if not Organization.objects.exists():
            self.stdout.write("No organisation yet: create it, its first site and its Super-admin with "
                              "`rallypoint setup`.")
        self.stdout.write(f"Rallypoint serves {settings.BASE_URL}/ (listening on {settings.LISTEN_HOST}:"
                          f"{settings.PORT}) — stop with Ctrl-C.")
        self.stdout.flush()
        serve()
        self.stdout.write("Rallypoint stopped.")

    def prepare_tls(self) -> None:
        """The operator's own certificate is used as it is; otherwise the local authority's, made or renewed."""
        if not settings.TLS_LOCAL_CA:
            for variable, path in (("RP_TLS_CERT_FILE", settings.TLS_CERT_FILE),
                                   ("RP_TLS_KEY_FILE", settings.TLS_KEY_FILE)):
                if not Path(path).is_file():
                    raise CommandError(f"{variable}: {path} is not a file (RP_TLS_CERT_FILE and RP_TLS_KEY_FILE "
                                       "name your certificate and its key; leave both unset for a local one)")
            return
        # The names the server answers to, and the one in links (the only one when RP_ALLOWED_HOSTS is "*").
        hosts = [*settings.ALLOWED_HOSTS, urlsplit(settings.BASE_URL).hostname or "localhost"]
        local = ensure_local_certificates(settings.TLS_DIR, hosts)
        for note in local.notes:
            self.stdout.write(note)
        if local.served:
            self.stdout.write(trust_instructions(local.ca_file))
