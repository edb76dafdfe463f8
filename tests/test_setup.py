"""`rallypoint setup`: a real installation starts without the demo.

It creates the organisation, its first site and the Super-admin, and prints a single-use link that works
for one hour, with which the Super-admin chooses a password. The end-to-end test runs the real command in
a subprocess on an empty data directory (and a new PostgreSQL database when the suite runs on PostgreSQL),
starts the real server on it and follows the link over HTTPS.
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from rallypoint.accounts.models import User
from rallypoint.accounts.tokens import AnyPasswordLink, password_links, setup_links
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Organization, SuperAdmin
from rallypoint.tenants.roles import Role
from tests.server import fresh_database, run_server
from tests.webclient import WebClient

REPO = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "violet tractor umbrella 83"
LINK = re.compile(r"https://\S+/accounts/set-password/\S+/")


def setup_env(data_dir: Path, database: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
    env.update(RP_DATA_DIR=str(data_dir), **extra)
    if database:
        env["RP_DATABASE_URL"] = database
    return env


def run_setup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rallypoint", "setup", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, umask=0o022)


def test_setup_on_an_empty_data_directory_and_its_link_works_once(tmp_path):
    data = tmp_path / "data"
    with fresh_database() as database:
        env = setup_env(data, database, RP_SETUP_EMAIL="Chief@Example.org", RP_SETUP_NAME="Chris Chief",
                        RP_BASE_URL="https://alarm.example.org")
        done = run_setup(env, "--no-input", "--organization", "Stadtwerke Example", "--site", "Head office",
                         "--time-zone", "Europe/Vienna")
        assert done.returncode == 0, done.stderr
        link = LINK.search(done.stdout).group(0)
        assert link.startswith("https://alarm.example.org/accounts/set-password/")
        assert "within 60 minutes" in done.stdout and "It works once" in done.stdout

        again = run_setup(env, "--no-input", "--organization", "Other", "--site", "Other")
        assert again.returncode == 1 and "already set up" in again.stderr

        # The demo is on by default, but an installation that has an organisation is never seeded.
        with run_server(tmp_path, {"RP_POW_MAX_COUNTER": "8"}, database or "") as server:
            path = "/" + link.split("/", 3)[3]
            client = WebClient(server.base_url)
            opened = client.get(path)
            assert opened.status == 302 and "/set-password/" in opened.location
            saved = client.submit(opened.location, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
            assert saved.status == 302 and saved.location.endswith("/accounts/login/"), saved.text

            signed_in = WebClient(server.base_url).submit(
                "/accounts/login/", {"username": "chief@example.org", "password": NEW_PASSWORD})
            assert signed_in.status == 302 and "/accounts/login/" not in signed_in.location
            second = WebClient(server.base_url).get(path)
            assert second.status == 200 and "This link no longer works" in second.text
            assert "Demo sign-in" not in server.output()
            assert not (data / "demo-credentials.txt").exists()


class Terminal:
    """The command on a pseudo-terminal, as an operator would run it: read its prompts, type answers."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.leader, follower = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "-m", "rallypoint", *args], env=env, cwd=REPO,
                                        stdin=follower, stdout=follower, stderr=follower, umask=0o022)
        os.close(follower)
        self.output, self.cursor = "", 0

    def expect(self, marker: str, timeout: float = 60) -> None:
        """Wait until ``marker`` appears after what was expected before."""
        deadline = time.monotonic() + timeout
        while marker not in self.output[self.cursor:]:
            assert time.monotonic() < deadline, f"waited for {marker!r}; the terminal shows {self.output!r}"
            if select.select([self.leader], [], [], 0.5)[0]:
                try:
                    self.output += os.read(self.leader, 4096).decode(errors="replace")
                except OSError:  # the command ended and closed its terminal
                    assert marker in self.output[self.cursor:], self.output
        self.cursor = self.output.index(marker, self.cursor) + len(marker)

    def type(self, answer: str) -> None:
        os.write(self.leader, answer.encode() + b"\r")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.leader)


def test_on_a_terminal_it_asks_for_what_is_missing_and_asks_again_for_a_bad_answer(tmp_path):
    with fresh_database() as database:
        terminal = Terminal(["setup", "--name", "Pat Example"],
                            setup_env(tmp_path / "data", database, RP_SETUP_SITE="Depot North"))
        try:
            for prompt, answer in (("Organisation: ", "Harbour Authority"),
                                   ("First site [Depot North]: ", ""),  # Enter takes the variable's value
                                   ("Time zone of the site [Europe/Berlin]: ", "Mars/Base"),
                                   ("Select a valid choice", None),
                                   ("Time zone of the site [Europe/Berlin]: ", ""),
                                   ("Super-admin's e-mail address: ", "not-an-address"),
                                   ("Enter a valid email address.", None),
                                   ("Super-admin's e-mail address: ", "Pat@Example.org")):
                terminal.expect(prompt)
                if answer is not None:
                    terminal.type(answer)
            terminal.expect("It works once")
            assert terminal.process.wait(timeout=60) == 0
        finally:
            terminal.close()
        assert "Super-admin's name" not in terminal.output  # given as an option: not asked
        assert "pat@example.org" in terminal.output and LINK.search(terminal.output)


def test_without_a_terminal_it_names_what_is_missing(db):
    with pytest.raises(CommandError) as refused:
        call_command("setup", "--no-input", "--organization", "Org", "--email", "no-address", stdout=io.StringIO())
    message = str(refused.value)
    assert "--site (RP_SETUP_SITE): This field is required." in message
    assert "--name (RP_SETUP_NAME): This field is required." in message
    assert "--email (RP_SETUP_EMAIL): Enter a valid email address." in message
    assert not Organization.objects.exists()


def set_up(*args: str) -> str:
    out = io.StringIO()
    call_command("setup", "--no-input", "--organization", "Harbour Authority", "--site", "Pier 1",
                 "--name", "Pat Example", "--email", "pat@example.org", *args, stdout=out)
    return out.getvalue()


def test_it_makes_the_super_admin_an_administrator_of_the_first_site(db):
    set_up()
    user = User.objects.by_email("pat@example.org").get()
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.ADMIN and membership.site.name == "Pier 1"
    assert membership.site.time_zone == "Europe/Berlin"  # RP_TIME_ZONE's default
    assert SuperAdmin.objects.filter(user=user, organization=membership.site.organization).exists()
    assert Membership.objects.filter(site=membership.site, user__is_support=True).exists()  # as from the pages
    assert not user.has_usable_password()


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_the_link_works_for_one_hour_only_and_a_new_one_can_be_printed(db, client):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        link = path_of(LINK.search(set_up()).group(0))
        clock.shift(timedelta(minutes=59))
        assert Client().get(link).status_code == 302  # still valid (opening it does not use it up)
        clock.shift(timedelta(minutes=2))
        assert "This link no longer works" in client.get(link, follow=True).content.decode()

        out = io.StringIO()
        call_command("setup", "--new-link", "PAT@example.org", stdout=out)
        fresh = path_of(LINK.search(out.getvalue()).group(0))
        assert Client().get(fresh).status_code == 302
    with pytest.raises(CommandError, match="No active Super-admin"):
        call_command("setup", "--new-link", "nobody@example.org", stdout=io.StringIO())


def test_a_setup_link_cannot_pass_for_a_24_hour_link(db):
    set_up()
    user = User.objects.by_email("pat@example.org").get()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        setup_token, invitation_token = setup_links.make_token(user), password_links.make_token(user)
        clock.shift(timedelta(hours=2))
        assert AnyPasswordLink().check_token(user, invitation_token)
        assert not AnyPasswordLink().check_token(user, setup_token)
        assert not password_links.check_token(user, setup_token)


def test_a_second_organisation_only_when_asked_and_never_under_a_taken_name(db):
    set_up()
    with pytest.raises(CommandError, match="already set up"):
        set_up()
    with pytest.raises(CommandError, match="An organisation with this name already exists"):
        set_up("--add-organization")
    out = io.StringIO()
    call_command("setup", "--no-input", "--add-organization", "--organization", "Second Customer", "--site", "Plant",
                 "--name", "Sam Second", "--email", "sam@example.org", stdout=out)
    assert LINK.search(out.getvalue())
    assert Organization.objects.count() == 2


def test_an_existing_account_added_to_another_organisation_gets_no_link(db):
    set_up()
    user = User.objects.by_email("pat@example.org").get()
    user.set_password(NEW_PASSWORD)
    user.save()
    out = io.StringIO()
    call_command("setup", "--no-input", "--add-organization", "--organization", "Second Customer", "--site", "Plant",
                 "--name", "Pat Example", "--email", "pat@example.org", stdout=out)
    assert not LINK.search(out.getvalue()) and "already has a Rallypoint account" in out.getvalue()
    assert SuperAdmin.objects.filter(user=user).count() == 2
