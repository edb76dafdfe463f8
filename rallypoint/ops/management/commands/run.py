from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from rallypoint.lib.tls import ensure_self_signed
from rallypoint.ops.server import serve
from rallypoint.tenants.demo import read_credentials, seed_demo
from rallypoint.tenants.management.commands.demo import print_credentials


class Command(BaseCommand):
    help = "Migrate, seed the demo on first start, and serve the web app (HTTPS) with the worker in-process."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if settings.DEMO:
            rows = seed_demo() or read_credentials()
            if rows:
                print_credentials(self.stdout, rows)
        if settings.TLS and ensure_self_signed(Path(settings.TLS_CERT_FILE), Path(settings.TLS_KEY_FILE),
                                               settings.ALLOWED_HOSTS):
            self.stdout.write(f"Made a self-signed TLS certificate: {settings.TLS_CERT_FILE}")
        self.stdout.write(f"Rallypoint serves {settings.BASE_URL}/ (listening on {settings.LISTEN_HOST}:"
                          f"{settings.PORT}) — stop with Ctrl-C.")
        self.stdout.flush()
        serve()
        self.stdout.write("Rallypoint stopped.")
