"""Everything in the data directory is for the service's own user only: 0700 directories, 0600 files.

It holds keys, the SQLite database and the e-mail outbox with set-password links. A real server starts on
an empty data directory (from a shell with the usual umask 022), writes an e-mail to the outbox, and then
nothing under the data directory may be open to the group or to others; a second start fixes what an
earlier version left readable.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from tests.server import fresh_database, run_server
from tests.webclient import WebClient

QUICK_POW = {"RP_POW_MAX_COUNTER": "8"}


def open_to_others(data_dir: Path) -> list[str]:
    """Every path under ``data_dir`` (itself included) that is not a 0700 directory or a 0600 file."""
    found = []
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            found.append(f"{path.relative_to(data_dir.parent)} {mode:o}")
    return found


def request_password_link(server) -> Path:
    """Ask for a password link for the demo administrator: the e-mail lands in the outbox as a file."""
    outbox = server.data_dir / "outbox"
    client = WebClient(server.base_url)
    page = client.submit("/accounts/password-reset/", {"email": server.credentials()["admin"][0]})
    assert page.status == 302, page.text
    deadline = time.monotonic() + 15  # sent in the request, or through the outbox by the worker
    while time.monotonic() < deadline:
        mails = list(outbox.glob("*.log")) if outbox.is_dir() else []
        if mails and "/accounts/set-password/" in mails[0].read_text():
            return mails[0]
        time.sleep(0.1)
    raise AssertionError("no e-mail in the outbox")


def test_everything_in_the_data_directory_is_owner_only_from_the_first_start_on(tmp_path):
    with fresh_database() as database:
        with run_server(tmp_path, QUICK_POW, database or "") as first:
            mail = request_password_link(first)
            data = first.data_dir
            made = {p.relative_to(data).as_posix() for p in data.rglob("*")}
            expected = {"secret_key", "keyring.json", "demo-credentials.txt", "static", "tls/cert.pem",
                        "tls/key.pem", "outbox", mail.relative_to(data).as_posix()}
            if not database:
                expected |= {"rallypoint.sqlite3", "rallypoint.sqlite3-wal", "rallypoint.sqlite3-shm"}
            assert expected <= made
            assert open_to_others(data) == []
            assert first.stop() == 0

        # An earlier version (or a start with another umask) left everything readable: the next start fixes it.
        for path in [data, *data.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        with run_server(tmp_path, QUICK_POW, database or "") as second:
            assert open_to_others(data) == []
            assert second.stop() == 0
