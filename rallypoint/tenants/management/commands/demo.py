from django.core.management.base import BaseCommand

from rallypoint.tenants.demo import credentials_path, read_credentials, seed_demo


class Command(BaseCommand):
    help = "Seed the demo organisation (only into an empty database) and print its sign-in details."

    def handle(self, *args, **options):
        created = seed_demo()
        rows = created or read_credentials()
        if created is None and not rows:
            self.stdout.write("The database already holds an organisation; no demo was seeded.")
            return
        print_credentials(self.stdout, rows)


def print_credentials(out, rows) -> None:
    out.write("Demo sign-in (e-mail / password / role):")
    for email, password, role in rows:
        out.write(f"  {email:<36} {password:<20} {role}")
    out.write(f"(also in {credentials_path()}, readable only by its owner)")
