"""The live Art. 32 report: every measure of the seed sheet with a status and evidence, checked against the
installation; the command, the page, the PDF and the monthly e-mail say the same."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from rallypoint.accounts.mfa_models import TotpDevice
from rallypoint.audit.models import Approval
from rallypoint.notify.models import Delivery
from rallypoint.ops import tom_report
from rallypoint.ops.models import MeasureDeclaration, ReportSettings
from rallypoint.people.reviews import open_review
from rallypoint.tenants.roles import Role

SEED_HEADINGS = ["Vertraulichkeit", "Zutrittskontrolle", "Zugangskontrolle", "Zugriffskontrolle", "Trennungsgebot",
                 "Auftragskontrolle", "Verschlüsselung", "Anonymisierung / Pseudonymisierung", "Transportkontrolle",
                 "Eingabekontrolle", "Verfügbarkeitskontrolle", "Belastbarkeit", "Wiederherstellbarkeit",
                 "Art. 32 (1) d"]


def _super_client(world) -> Client:
    client = Client()
    client.force_login(world.super_a)
    session = client.session
    session["rp_site_id"] = world.a.site.pk
    session.save()
    return client


def by_title(findings, words: str):
    [finding] = [f for f in findings if words in f.title]
    return finding


def test_every_measure_of_the_sheet_is_in_the_report_with_a_status(world):
    findings = tom_report.build(world.org_a)
    headings = " ".join(f.heading for f in findings)
    for heading in SEED_HEADINGS:
        assert heading in headings, heading
    assert all(f.status in ("met", "attention", "not_met") and f.how for f in findings)
    assert by_title(findings, "backups").status == "not_met"  # honest: not built yet
    assert by_title(findings, "trained").status == "not_met"  # not declared yet


def test_the_checks_follow_the_installation(world):
    findings = tom_report.build(world.org_a)
    factor = by_title(findings, "second factor")
    assert factor.status == "not_met"  # the test organisation made it optional, and nobody has one
    for user_id in tom_report._admins(tom_report.Scope(world.org_a, list(world.org_a.sites.all()), timezone.now())):
        TotpDevice.objects.create(user_id=user_id, secret="JBSWY3DPEHPK3PXP", confirmed=True)
    assert by_title(tom_report.build(world.org_a), "second factor").status == "met"

    review = open_review(world.a.site, now=timezone.now() - timedelta(days=30))
    assert review.is_overdue(timezone.now())
    assert by_title(tom_report.build(world.org_a), "reviewed").status == "not_met"

    Approval.objects.create(organization=world.org_a, site=world.a.site, process="delete_person", state="done",
                            without_second_person=True, decided_at=timezone.now(),
                            expires_at=timezone.now() + timedelta(hours=1))
    four_eyes = by_title(tom_report.build(world.org_a), "Four-eyes")
    assert four_eyes.status == "attention" and "without a second person" in " ".join(four_eyes.evidence)

    MeasureDeclaration.objects.create(organization=world.org_a, measure="training", text="Yearly e-learning",
                                      checked_on=date.today() - timedelta(days=20))
    training = by_title(tom_report.build(world.org_a), "trained")
    assert training.status == "met" and "Yearly e-learning" in training.evidence
    MeasureDeclaration.objects.filter(measure="training").update(checked_on=date.today() - timedelta(days=400))
    assert by_title(tom_report.build(world.org_a), "trained").status == "attention"
    assert by_title(tom_report.build(world.org_a), "are recorded").status == "met"  # the chains verify


def test_the_command_prints_every_measure_in_both_languages(world):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:  # something is not met (backups): the exit code says so
        call_command("tom_report", "--organization", str(world.org_a.pk), stdout=out)
    assert exit_.value.code == 1
    text = out.getvalue()
    assert "[NOT MET]" in text and "[MET]" in text and "TLS" in text
    for heading in SEED_HEADINGS:
        assert heading in text
    german = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("tom_report", "--organization", str(world.org_a.pk), "--language", "de", stdout=german)
    assert "[NICHT ERFÜLLT]" in german.getvalue() and "Art.-32-Bericht" in german.getvalue()


def test_the_page_and_the_pdf_show_the_same_and_only_to_super_admins(world):
    client = _super_client(world)
    page = client.get("/report/").content.decode()
    findings = tom_report.build(world.org_a)
    counts = tom_report.summary(findings)
    assert f"{counts['met']} met, {counts['attention']} need attention, {counts['not_met']} not met." in page
    for finding in findings:
        assert finding.title in page
    pdf = client.get("/report/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    admin = Client()
    admin.force_login(world.a.people[Role.ADMIN].user)
    assert admin.get("/report/").status_code in (302, 403)


def test_declarations_and_the_officer_are_recorded_and_the_report_mailed_monthly(world):
    client = _super_client(world)
    officer = world.a.people[Role.MEMBER]
    wrong = client.post("/report/declarations/", {"training_text": "Yearly", "officer": ""})
    assert wrong.status_code == 400 and "Give both" in wrong.content.decode()
    done = client.post("/report/declarations/", {"training_text": "Yearly e-learning",
                                                 "training_checked": date.today().isoformat(),
                                                 "officer": str(officer.pk)})
    assert done.status_code == 302
    assert ReportSettings.objects.get(organization=world.org_a).data_protection_officer == officer
    assert tom_report.send_monthly() == 1
    sent = Delivery.objects.get(kind=tom_report.MONTHLY)
    assert sent.membership == officer and set(sent.context) == {"met", "attention", "not_met"}
    assert tom_report.send_monthly() == 0  # once a month
    assert tom_report.send_monthly(timezone.now() + timedelta(days=31)) == 1
