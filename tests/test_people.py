"""Managing the people of a site: create, invite, edit, deactivate, CSV import and export."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from rallypoint.accounts.mfa_models import OrganizationSecurity
from rallypoint.accounts.models import User, email_index
from rallypoint.audit.models import AuditEntry
from rallypoint.lib.csvfile import csv_safe as _csv_safe
from rallypoint.lib.csvfile import csv_unsafe as _csv_unsafe
from rallypoint.notify.models import Delivery
from rallypoint.people.models import Group, Membership
from rallypoint.tenants.roles import SUPER_ADMIN, Role
from tests.pow import pow_field
from tests.server import free_port
from tests.sinks import SmtpSink


def member_of(site, email: str) -> Membership:
    return Membership.objects.get(site=site, user__email_index=email_index(email))


NEW = {"full_name": "Paula Prüfer", "email": "Paula@Example.org", "phone": "+49 30 1234567",
       "department": "Lab", "role": "member"}


def invite(client, send_outbox):
    """Add NEW with an invitation; the worker sends the e-mail from the outbox."""
    response = client.post("/people/new/", {**NEW, "invite": "on"})
    assert not mail.outbox  # queued, not sent inside the request
    send_outbox()
    return response


def test_an_admin_adds_a_person_and_sends_an_invitation(world, signed_in, send_outbox):
    client = signed_in(Role.ADMIN)
    response = invite(client, send_outbox)
    membership = member_of(world.a.site, "paula@example.org")
    assert response.status_code == 302 and response["Location"] == f"/people/{membership.pk}/"
    assert (membership.full_name, membership.role, membership.phone) == ("Paula Prüfer", "member", "+49 30 1234567")
    assert not membership.user.has_usable_password()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["paula@example.org"]
    assert "SiteAazq" in mail.outbox[0].subject


def test_the_invitation_link_sets_a_password_once(world, signed_in, client, send_outbox):
    invite(signed_in(Role.ADMIN), send_outbox)
    link = re.search(r"https://\S+", mail.outbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    client.logout()
    first = client.get("/" + path)
    assert first.status_code == 302 and "set-password" in first["Location"]
    assert path.split("/")[-2] not in first["Location"]  # the token leaves the URL
    form = client.get(first["Location"])
    assert "Set your password" in form.content.decode()
    done = client.post(first["Location"], {"new_password1": "a long passphrase here", "new_password2":
                                           "a long passphrase here", **pow_field(client, first["Location"])})
    assert done.status_code == 302
    assert User.objects.by_email("paula@example.org").get().check_password("a long passphrase here")
    again = client.get("/" + path, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_short_and_common_passwords_are_refused(world, signed_in, client, send_outbox):
    invite(signed_in(Role.ADMIN), send_outbox)
    path = "/" + re.search(r"https://\S+", mail.outbox[0].body).group(0).split("/", 3)[3]
    client.logout()
    page = client.get(path)["Location"]
    for bad in ("short", "password1234"):
        response = client.post(page, {"new_password1": bad, "new_password2": bad, **pow_field(client, page)})
        assert response.status_code == 200
        assert not User.objects.by_email("paula@example.org").get().has_usable_password()


def test_bad_input_is_refused_with_a_message_and_nothing_written(world, signed_in):
    client = signed_in(Role.ADMIN)
    before = Membership.objects.count(), AuditEntry.objects.count()
    response = client.post("/people/new/", {**NEW, "email": "not-an-address", "phone": "call me", "role": "boss"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid email address." in body
    assert "phone number" in body
    assert "Select a valid choice." in body
    assert (Membership.objects.count(), AuditEntry.objects.count()) == before


def test_adding_someone_twice_to_the_same_site_is_refused(world, signed_in):
    client = signed_in(Role.ADMIN)
    existing = world.a.people[Role.GUEST].user.email
    response = client.post("/people/new/", {**NEW, "email": existing})
    assert response.status_code == 400
    assert "already belongs to this site" in response.content.decode()


def test_an_existing_account_from_another_organisation_learns_nothing(world, signed_in):
    """Adding an e-mail that org B already uses gives site a its own record: B's name stays hidden."""
    client = signed_in(Role.ADMIN)
    foreign = world.b.people[Role.EMPLOYEE]
    client.post("/people/new/", {**NEW, "email": foreign.user.email})
    mine = Membership.objects.get(site=world.a.site, user=foreign.user)
    assert mine.full_name == "Paula Prüfer"
    page = client.get(f"/people/{mine.pk}/").content.decode()
    assert foreign.full_name not in page and foreign.department not in page
    # Nor may site a change the e-mail the other organisation's person signs in with.
    response = client.post(f"/people/{mine.pk}/", {**NEW, "email": "hijack@example.org"})
    assert response.status_code == 400
    assert User.objects.get(pk=foreign.user.pk).email == foreign.user.email


def test_an_admin_edits_a_person_and_grants_a_role(world, signed_in):
    client = signed_in(Role.ADMIN)
    person = world.a.people[Role.EMPLOYEE]
    response = client.post(f"/people/{person.pk}/", {**NEW, "email": person.user.email, "role": "lead"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.full_name, person.role, person.department) == ("Paula Prüfer", "lead", "Lab")
    actions = set(AuditEntry.objects.filter(object_id=str(person.pk)).values_list("action", flat=True))
    assert {"role.granted", "person.updated"} <= actions


def test_an_admin_cannot_demote_themselves(world, signed_in):
    client = signed_in(Role.ADMIN)
    me = world.a.people[Role.ADMIN]
    response = client.post(f"/people/{me.pk}/", {"full_name": me.full_name, "email": me.user.email,
                                                 "role": "guest"})
    assert response.status_code == 400
    me.refresh_from_db()
    assert me.role == Role.ADMIN


def test_deactivating_ends_access_to_the_site_at_once(world, signed_in, client):
    person = world.a.people[Role.LEAD]
    signed_in(Role.ADMIN).post(f"/people/{person.pk}/activation/")
    person.refresh_from_db()
    assert not person.is_active
    client.force_login(person.user)
    assert client.get("/groups/").status_code == 403  # no site left to work in
    signed_in(Role.ADMIN).post(f"/people/{person.pk}/activation/")
    person.refresh_from_db()
    assert person.is_active


def test_bulk_deactivation_is_one_audited_batch(world, signed_in):
    client = signed_in(Role.ADMIN)
    chosen = [world.a.people[Role.GUEST], world.a.people[Role.EMPLOYEE]]
    client.post("/people/", {"action": "deactivate", "selected": [m.pk for m in chosen]})
    entries = AuditEntry.objects.filter(action="person.deactivated", site=world.a.site)
    assert entries.count() == 2
    assert len({e.batch for e in entries}) == 1 and entries[0].batch is not None


def test_only_admins_see_personal_data(world, signed_in):
    employee = world.a.people[Role.EMPLOYEE]
    for role, sees in ((SUPER_ADMIN, True), (Role.ADMIN, True), (Role.LEAD, False), (Role.MEMBER, False)):
        body = signed_in(role).get("/people/").content.decode()
        assert employee.full_name in body
        assert (employee.user.email in body) is sees, role
        assert (employee.phone in body) is sees, role
        assert (employee.department in body) is sees, role
    for role in (Role.EMPLOYEE, Role.GUEST):
        assert signed_in(role).get("/people/").status_code == 403


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:p|span)>', html, re.S)
    return re.sub(r"<[^>]+>|\s+", " ", match.group(1)).strip() if match else ""


def test_the_home_page_and_the_people_list_count_people_alike(world, signed_in):
    """Both count the active people: not the support account, not the deactivated (the list says so)."""
    world.a.people[Role.GUEST].is_active = False
    world.a.people[Role.GUEST].save()
    # Site a: five personas and the Super-admin, one of them now deactivated, and the support account.
    for role in (Role.ADMIN, Role.LEAD):
        client = signed_in(role)
        home = client.get("/").content.decode()
        assert _text(home, "people-count-active") == "5"
        assert "5</span><span>Active people</span>" in home
        listed = client.get("/people/").content.decode()
        summary = _text(listed, "people-summary")
        assert summary.startswith("5 active people"), summary
        if role == Role.ADMIN:  # who may see deactivated people and the support account in the list
            assert "1 deactivated" in summary and "The support account is listed too, but not counted" in summary
            assert listed.count('name="selected"') == 7
        else:
            assert "deactivated" not in summary and "support" not in summary
            assert listed.count("<tr>") - 1 == 5  # the header row and the five active people
    german = signed_in(Role.ADMIN).get("/people/", headers={"accept-language": "de"}).content.decode()
    assert _text(german, "people-summary").startswith("5 aktive Personen · 1 deaktiviert")


def test_the_support_account_is_created_with_the_site_and_can_be_deleted_for_good(world, signed_in):
    support = Membership.objects.get(site=world.a.site, user__is_support=True)
    assert support.role == Role.ADMIN and not support.user.has_usable_password()
    client = signed_in(Role.ADMIN)
    assert client.post(f"/people/{support.pk}/delete/").status_code == 302
    assert not Membership.objects.filter(site=world.a.site, user__is_support=True).exists()
    assert not User.objects.filter(pk=support.user_id).exists()
    client.post(f"/sites/{world.a.site.pk}/", {"name": "Renamed", "time_zone": "UTC"})
    assert not Membership.objects.filter(site=world.a.site, user__is_support=True).exists()
    # Other people cannot be deleted this way.
    other = world.a.people[Role.GUEST]
    client.post(f"/people/{other.pk}/delete/")
    assert Membership.objects.filter(pk=other.pk).exists()


CSV_OK = "full_name,email,phone,department,role\nIda Import,ida@example.org,+49 89 555,Lab,member\n" \
         "Otto Other;x,otto@example.org,,,\n"


def _upload(client, text: str):
    return client.post("/people/import/", {"file": SimpleUploadedFile("people.csv", text.encode())})


def test_csv_import_creates_and_updates_people(world, signed_in):
    client = signed_in(Role.ADMIN)
    existing = world.a.people[Role.GUEST]
    text = CSV_OK + f"New Name,{existing.user.email},,,guest\n"
    response = _upload(client, text)
    assert response.status_code == 302
    assert member_of(world.a.site, "ida@example.org").role == "member"
    assert member_of(world.a.site, "otto@example.org").role == "employee"
    existing.refresh_from_db()
    assert existing.full_name == "New Name"
    batch = AuditEntry.objects.filter(site=world.a.site, action="person.created").order_by("-pk")[0].batch
    assert AuditEntry.objects.filter(batch=batch).count() == 3


def test_csv_import_reports_errors_by_line_and_writes_nothing(world, signed_in):
    client = signed_in(Role.ADMIN)
    before = Membership.objects.count(), AuditEntry.objects.count()
    text = CSV_OK + ",noname@example.org,,,\nBad Role,bad@example.org,,,chief\nIda Twice,ida@example.org,,,\n"
    response = _upload(client, text)
    assert response.status_code == 400
    body = response.content.decode()
    assert "Line 4" in body and "Line 5" in body and "Line 6" in body
    assert "appears twice" in body
    assert (Membership.objects.count(), AuditEntry.objects.count()) == before


@pytest.mark.parametrize("payload", [b"\xff\xfe\x00garbage", b"name;mail\nx;y\n", b""])
def test_csv_import_rejects_files_it_cannot_read(world, signed_in, payload):
    client = signed_in(Role.ADMIN)
    response = client.post("/people/import/", {"file": SimpleUploadedFile("p.csv", payload)})
    assert response.status_code == 400


def _problems(response) -> list[str]:
    """The problems the import page lists, as the person reads them."""
    assert response.status_code == 400
    notice = response.content.decode().split('role="alert"')[1].split("</div>")[0]
    return [re.sub(r"\s+", " ", item).strip() for item in re.findall(r"<li>(.*?)</li>", notice, re.S)]


def test_csv_import_reports_a_row_with_more_values_than_columns_by_its_line(world, signed_in):
    client = signed_in(Role.ADMIN)
    before = Membership.objects.count()
    text = ("full_name,email,phone,department,role\n"
            "Ida Import,ida@example.org,,,member\n"
            "\n"
            "Only Extra,onlyextra@example.org,,,employee,surplus\n"
            "Trailing Empty,trailing@example.org,,,employee,,\n")
    problems = _problems(_upload(client, text))
    assert problems == ["Line 4: This row has 6 values, but the first line names 5 columns."]
    assert Membership.objects.count() == before


@pytest.mark.parametrize(("payload", "expected"), [
    (b"full_name,email\nNul Byte,nul@example.org\x00\n", "Line 2: This line contains a NUL character"),
    (b"full_name,email\nLatin One,caf\xe9@example.org\n", "The file is not UTF-8 encoded text"),
    (b"Ida Import,ida@example.org,,,member\n", "Line 1: The first line must name the columns: full_name, email"),
    (b"full_name,email\nLong,long@example.org\nToo long," + b"x" * 200_000 + b"\n",
     "Line 3: This line cannot be read as CSV"),
    (b"full_name,email\n" + b"x,x@example.org\n" * 5001, "Line 1: At most 5000 rows can be imported at once."),
])
def test_csv_import_explains_a_malformed_file(world, signed_in, payload, expected):
    client = signed_in(Role.ADMIN)
    response = client.post("/people/import/", {"file": SimpleUploadedFile("p.csv", payload)})
    assert _problems(response)[0].startswith(expected)


def test_csv_import_refuses_a_file_too_big_to_be_a_list_of_people(world, signed_in):
    client = signed_in(Role.ADMIN)
    payload = b"full_name,email\n" + b"x" * (5 * 1024 * 1024)
    response = client.post("/people/import/", {"file": SimpleUploadedFile("p.csv", payload)})
    assert response.status_code == 400
    assert "The file is larger than 5 MB." in response.content.decode()


def export_without_approval(world) -> None:
    """These tests are about the file; four-eyes for the export is tested in test_approvals.py."""
    OrganizationSecurity.objects.filter(organization=world.org_a).update(four_eyes=[])


def test_csv_export_has_every_person_and_defuses_formulas(world, signed_in):
    export_without_approval(world)
    client = signed_in(Role.ADMIN)
    person = world.a.people[Role.MEMBER]
    person.full_name = '=HYPERLINK("https://evil.example","Click")'
    person.department = "=1+1"
    person.phone = "+49 30 1234567"
    person.save()
    other = world.a.people[Role.GUEST]
    other.full_name, other.department = "@SUM(A1)", "-2+3"
    other.save()
    other.user.email = "=cmd@example.org"
    other.user.save()
    response = client.get("/people/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["full_name", "email", "phone", "department", "role", "groups", "active"]
    assert {row[1] for row in rows[1:]} >= {m.user.email.replace("=", "'=") for m in world.a.people.values()}
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    member_row = next(row for row in rows if row[1] == person.user.email)
    assert member_row[:4] == ["'=HYPERLINK(\"https://evil.example\",\"Click\")", person.user.email,
                              "'+49 30 1234567", "'=1+1"]
    assert "support+" not in text
    assert AuditEntry.objects.filter(site=world.a.site, action="people.exported").exists()
    # The exported file imports again with nothing changed: the defused cells are read back.
    response = _upload(client, text)
    assert response.status_code == 302
    assert AuditEntry.objects.filter(site=world.a.site, action="person.updated").count() == 0
    person.refresh_from_db()
    other.refresh_from_db()
    assert (person.full_name, person.phone, person.department) == (
        '=HYPERLINK("https://evil.example","Click")', "+49 30 1234567", "=1+1")
    assert (other.full_name, other.department, other.user.email) == ("@SUM(A1)", "-2+3", "=cmd@example.org")


def test_the_defusing_apostrophe_is_only_taken_off_what_it_defused():
    for value in ["=1+1", "'=1+1", "''+49", "'plain", "plain", "", "'", "-", "\tx", "O'Brien"]:
        assert _csv_unsafe(_csv_safe(value)) == value
    assert _csv_unsafe("'+49 30 1234567") == "+49 30 1234567"  # typed so in a spreadsheet
    assert _csv_unsafe("'plain") == "'plain"


def test_groups_are_managed_by_admins_and_seen_by_the_crisis_team(world, signed_in):
    client = signed_in(Role.ADMIN)
    members = [world.a.people[Role.LEAD].pk, world.a.people[Role.MEMBER].pk]
    response = client.post("/groups/new/", {"name": "Fire wardens", "members": members})
    assert response.status_code == 302
    group = world.a.site.groups.get(name="Fire wardens")
    assert sorted(group.members.values_list("pk", flat=True)) == sorted(members)
    duplicate = client.post("/groups/new/", {"name": "Fire wardens"})
    assert duplicate.status_code == 400
    foreign_member = client.post("/groups/new/", {"name": "Sneaky", "members": [world.b.people["admin"].pk]})
    assert foreign_member.status_code == 400 and not world.a.site.groups.filter(name="Sneaky").exists()
    lead_view = signed_in(Role.LEAD).get("/groups/").content.decode()
    assert "Fire wardens" in lead_view and world.a.people[Role.LEAD].full_name in lead_view
    assert signed_in(Role.LEAD).post("/groups/new/", {"name": "x"}).status_code == 403
    assert signed_in(Role.EMPLOYEE).get("/groups/").status_code == 403


def test_an_invitation_waits_out_a_mail_server_outage(world, signed_in, settings, send_outbox):
    """The page never waits for the mail server: the e-mail waits in the outbox and goes out once the
    server is back (before, it was sent inside the request and lost when the server was down)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2  # nobody there
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    client = signed_in(Role.ADMIN)
    response = client.post("/people/new/", {**NEW, "invite": "on"}, follow=True)
    assert response.status_code == 200 and "invitation e-mail is on its way" in response.content.decode()
    send_outbox()
    queued = Delivery.objects.get(kind="account.invitation")
    assert queued.state == "pending" and queued.attempts == 1 and "unreachable" in queued.last_error
    with SmtpSink() as smtp, time_machine.travel(timezone.now() + timedelta(minutes=1)):
        settings.EMAIL_PORT = smtp.port
        send_outbox()
        assert [m.rcpt_tos for m in smtp.mails] == [["paula@example.org"]]
    assert Delivery.objects.get(pk=queued.pk).state == "sent"



# People without a login ------------------------------------------------------------------------------

def test_a_person_without_an_e_mail_address_is_listed_without_a_login(world, signed_in):
    client = signed_in(Role.ADMIN)
    response = client.post("/people/new/", {"full_name": "Paul Pupil", "email": "", "role": "guest", "invite": "on"})
    assert response.status_code == 302
    paul = Membership.objects.get(kind="listed")
    assert (paul.full_name, paul.user_id, paul.is_active) == ("Paul Pupil", None, True)
    page = client.get(f"/people/{paul.pk}/").content.decode()
    assert 'id="listed-badge"' in page and "Send invitation link" not in page
    assert client.post(f"/people/{paul.pk}/invite/", follow=True).status_code == 200  # refused with a message
    assert not mail.outbox


def test_adding_an_e_mail_address_lets_a_listed_person_sign_in(world, signed_in, send_outbox):
    client = signed_in(Role.ADMIN)
    client.post("/people/new/", {"full_name": "Paul Pupil", "email": "", "role": "employee"})
    paul = Membership.objects.get(kind="listed")
    client.post(f"/people/{paul.pk}/", {"full_name": "Paul Pupil", "email": "paul@example.org", "role": "employee"})
    paul.refresh_from_db()
    assert (paul.kind, paul.user.email) == ("member", "paul@example.org")
    client.post(f"/people/{paul.pk}/invite/")
    send_outbox()
    assert [m.to for m in mail.outbox] == [["paul@example.org"]]


def test_csv_import_lists_pupils_in_their_classes_and_a_second_import_changes_nothing(world, signed_in):
    export_without_approval(world)
    client = signed_in(Role.ADMIN)
    text = ("full_name,email,phone,department,role,groups\n"
            "Ben Becker,,,,guest,Class 5a\nClara Conrad,,+49 30 1,,guest,Class 5a|Choir\n"
            "Tom Teacher,tom@example.org,,,employee,Class 5a\n")
    assert _upload(client, text).status_code == 302
    klass, choir = Group.objects.get(site=world.a.site, name="Class 5a"), Group.objects.get(name="Choir")
    assert sorted(m.full_name for m in klass.members.all()) == ["Ben Becker", "Clara Conrad", "Tom Teacher"]
    assert [m.full_name for m in choir.members.all()] == ["Clara Conrad"]
    assert Membership.objects.filter(site=world.a.site, kind="listed").count() == 2
    before = Membership.objects.count()
    assert _upload(client, text).status_code == 302
    assert Membership.objects.count() == before
    exported = client.get("/people/export.csv").content.decode()
    assert "Clara Conrad,,'+49 30 1,,guest,Choir|Class 5a,yes" in exported


def test_a_listed_person_twice_in_a_file_is_reported(world, signed_in):
    client = signed_in(Role.ADMIN)
    response = _upload(client, "full_name,email\nBen Becker,\nBen Becker,\n")
    assert any("appears twice" in problem for problem in _problems(response))
    assert not Membership.objects.filter(kind="listed").exists()
