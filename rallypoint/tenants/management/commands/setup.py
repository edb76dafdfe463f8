"""``rallypoint setup``: the first organisation, its first site and its Super-admin, without the demo.

Values come from the options, else from ``RP_SETUP_*`` variables, else (on a terminal) from prompts.
The Super-admin chooses their password in the browser, through a single-use link that works for one
hour: the command never asks for a password, so none is typed into a terminal, a shell history or a
process list, and the page applies the same strength checks as for everybody.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from rallypoint.accounts.models import User
from rallypoint.accounts.tokens import SETUP_LINK_SECONDS, issue_setup_link
from rallypoint.audit.actions import record_security_event
from rallypoint.audit.models import SecurityEvent
from rallypoint.tenants.actions import set_up_organization
from rallypoint.tenants.forms import SetupForm
from rallypoint.tenants.models import Organization, SuperAdmin

# form field → (option, environment variable)
SOURCES = {
    "organization": ("--organization", "RP_SETUP_ORGANIZATION"),
    "site": ("--site", "RP_SETUP_SITE"),
    "time_zone": ("--time-zone", "RP_TIME_ZONE"),
    "full_name": ("--name", "RP_SETUP_NAME"),
    "email": ("--email", "RP_SETUP_EMAIL"),
}


class Command(BaseCommand):
    help = ("Create the first organisation, its first site and its Super-admin, and print a single-use link "
            "(valid one hour) with which the Super-admin sets their password. Runs once; further sites are "
            "added on the Sites page.")

    def add_arguments(self, parser):
        parser.add_argument("--organization", help="name of the organisation (RP_SETUP_ORGANIZATION)")
        parser.add_argument("--site", help="name of its first site (RP_SETUP_SITE)")
        parser.add_argument("--time-zone", help="the site's time zone, e.g. Europe/Berlin (default: RP_TIME_ZONE)")
        parser.add_argument("--name", help="the Super-admin's full name (RP_SETUP_NAME)")
        parser.add_argument("--email", help="the Super-admin's e-mail address, to sign in with (RP_SETUP_EMAIL)")
        parser.add_argument("--no-input", action="store_false", dest="interactive",
                            help="never prompt: fail when a value is missing")
        parser.add_argument("--add-organization", action="store_true",
                            help="add another organisation (another customer) to an installation that has one")
        parser.add_argument("--new-link", metavar="EMAIL",
                            help="only print a new one-hour link for this Super-admin (the last one expired)")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if options["new_link"]:
            self.new_link(options["new_link"])
            return
        existing = Organization.objects.count()
        if existing and not options["add_organization"]:
            raise CommandError(
                f"Rallypoint is already set up: the database holds {existing} organisation(s). Sign in and add "
                "sites on the Sites page; `rallypoint setup --new-link EMAIL` prints a new link for a "
                "Super-admin; `rallypoint setup --add-organization` adds another organisation (customer).")
        interactive = options["interactive"] and sys.stdin.isatty()
        values = self.collect(options, interactive)
        try:
            membership = set_up_organization(name=values["organization"], site_name=values["site"],
                                             time_zone=values["time_zone"], email=values["email"],
                                             full_name=values["full_name"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        site, user = membership.site, membership.user
        self.stdout.write(f"Set up the organisation “{site.organization.name}” with the site “{site.name}” "
                          f"({site.time_zone}) and its Super-admin {membership.full_name} <{user.email}>, "
                          f"who is also Administrator of {site.name}.")
        if user.has_usable_password():
            self.stdout.write("That person already has a Rallypoint account and signs in with its password: "
                              f"{settings.BASE_URL}/")
            return
        self.print_link(user)

    def collect(self, options, interactive: bool) -> dict[str, str]:
        """Each value from its option, else its variable; on a terminal, a prompt for what no option gave
        (the variable's value is the default) or what is not valid. Validated with the setup form."""
        defaults = {**settings.SETUP, "time_zone": settings.TIME_ZONE}
        values, problems = {}, []
        for name, field in SetupForm().fields.items():
            given = options[SOURCES[name][0].lstrip("-").replace("-", "_")]
            value = (given if given is not None else defaults[name]).strip()
            if interactive and (given is None or not self.valid(field, value)):
                value = self.ask(field, value)
            try:
                values[name] = field.clean(value)
            except ValidationError as exc:
                option, variable = SOURCES[name]
                problems.append(f"{option} ({variable}): {' '.join(exc.messages)}")
        if problems:
            raise CommandError("Missing or not valid:\n  " + "\n  ".join(problems))
        return values

    @staticmethod
    def valid(field, value: str) -> bool:
        try:
            field.clean(value)
        except ValidationError:
            return False
        return True

    def ask(self, field, default: str) -> str:
        """Prompt until the answer is valid; Enter takes the default (shown in brackets)."""
        while True:
            suffix = f" [{default}]" if default else ""
            answer = input(f"{field.label}{suffix}: ").strip() or default
            try:
                field.clean(answer)
            except ValidationError as exc:
                self.stdout.write("  " + " ".join(exc.messages))
                continue
            return answer

    def print_link(self, user: User) -> None:
        minutes = SETUP_LINK_SECONDS // 60
        link = issue_setup_link(user)
        self.stdout.write(f"\nOpen this link within {minutes} minutes to choose the Super-admin's password. "
                          "It works once:\n\n"
                          f"  {link}\n\n"
                          f"Then sign in at {settings.BASE_URL}/ (start the server with `rallypoint run`); a "
                          "Super-admin sets up a second factor at the first sign-in. If the link has expired: "
                          f"rallypoint setup --new-link {user.email}")

    def new_link(self, email: str) -> None:
        user = User.objects.by_email(email).filter(is_active=True).first()
        if user is None or not SuperAdmin.objects.filter(user=user).exists():
            raise CommandError("No active Super-admin signs in with that e-mail address.")
        with transaction.atomic():
            record_security_event(SecurityEvent.Kind.RESET_REQUESTED, user=user, detail={"via": "setup"})
            self.print_link(user)
