"""German and English are complete: every text in code and templates has a German translation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rallypoint"
PO = PACKAGE / "locale" / "de" / "LC_MESSAGES" / "django.po"


def test_every_german_message_is_translated_and_not_fuzzy():
    catalogue = polib.pofile(str(PO))
    assert catalogue.untranslated_entries() == []
    assert catalogue.fuzzy_entries() == []
    assert len(catalogue.translated_entries()) > 150


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (Debian package gettext)")
def test_the_catalogue_holds_every_text_of_the_code(tmp_path):
    """Extract the messages afresh from a copy of the package; nothing may be missing from the .po file."""
    copy = tmp_path / "rallypoint"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "django", "makemessages", "-l", "de", "--no-location", "--no-obsolete"],
                   cwd=copy, check=True, capture_output=True, env={"DJANGO_SETTINGS_MODULE": "rallypoint.settings",
                                                                 "PATH": "/usr/bin:/bin",
                                                                 "PYTHONPATH": str(tmp_path),
                                                                 "RP_DATA_DIR": str(tmp_path / "data")})
    fresh = {e.msgid for e in polib.pofile(str(copy / "locale" / "de" / "LC_MESSAGES" / "django.po"))}
    known = {e.msgid for e in polib.pofile(str(PO))}
    assert fresh - known == set(), "run `make messages` and translate the new texts"


def test_the_compiled_catalogue_matches_the_source():
    compiled = polib.mofile(str(PO.with_suffix(".mo")))
    source = polib.pofile(str(PO))
    assert {e.msgid: e.msgstr for e in compiled if e.msgid and not e.msgid_plural} == {
        e.msgid: e.msgstr for e in source.translated_entries() if not e.msgid_plural}
