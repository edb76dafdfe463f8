"""Secrets and keys never sit in the repository."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET_SHAPES = [
    re.compile(rb"-----BEGIN (?:RSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    re.compile(rb'"index_key"\s*:\s*"[A-Za-z0-9_\-+/=]{40,}"'),
    re.compile(rb"RP_(?:SECRET_KEY|ENCRYPTION_KEYS|ENCRYPTION_INDEX_KEY|SMTP_PASSWORD)=[A-Za-z0-9_\-+/=:]{24,}"),
]
FORBIDDEN_NAMES = {"secret_key", "keyring.json", "key.pem", "ca-key.pem", "demo-credentials.txt"}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("the test runs in a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_key_file_or_secret_is_checked_in():
    files = tracked_files()
    assert files
    for path in files:
        assert path.name not in FORBIDDEN_NAMES, f"{path} must not be in the repository"
        if not path.is_file() or path.suffix in {".mo", ".png"}:
            continue
        data = path.read_bytes()
        for shape in SECRET_SHAPES:
            assert not shape.search(data), f"{path.relative_to(ROOT)} contains something shaped like a secret"


def test_the_data_directory_is_ignored():
    ignored = (ROOT / ".gitignore").read_text()
    assert "/data/" in ignored and "/.test-data/" in ignored


def test_the_licence_text_is_there_and_named_the_way_packaging_tools_read_it():
    """pyproject.toml says AGPL-3.0-or-later: the full text ships with the code and in the wheel (``license-files``),
    and the licence is an SPDX string, not the table that setuptools deprecates (a warning at every install)."""
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    title, version = text.lstrip().splitlines()[:2]
    assert (title, version.strip()) == ("GNU AFFERO GENERAL PUBLIC LICENSE", "Version 3, 19 November 2007")
    assert "15. Disclaimer of Warranty." in text and text.rstrip().endswith("<http://www.gnu.org/licenses/>.")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["project"]["license"] == "AGPL-3.0-or-later"
    assert config["project"]["license-files"] == ["LICENSE"]
    (setuptools,) = [r for r in config["build-system"]["requires"] if r.startswith("setuptools")]
    lower = re.match(r"setuptools>=(\d+)", setuptools)
    assert lower and int(lower[1]) >= 77, setuptools
    assert "[LICENSE](LICENSE)" in (ROOT / "README.md").read_text(encoding="utf-8")
