"""Start the real ``rallypoint run`` in a subprocess for end-to-end tests.

It uses a fresh data directory and, when the suite runs on PostgreSQL, a
fresh PostgreSQL database of its own, so it starts exactly as on a new machine.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def insecure_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's certificate is self-signed
    return context


@contextmanager
def fresh_database(url: str | None = None):
    """A new, empty PostgreSQL database (dropped at the end) on the server of ``url`` (by default
    ``RP_DATABASE_URL``: when the suite runs on PostgreSQL); None for SQLite."""
    url = os.environ.get("RP_DATABASE_URL", "") if url is None else url
    if not url.startswith("postgres"):
        yield None
        return
    name = f"rp_e2e_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RunningServer:
    def __init__(self, process: subprocess.Popen, base_url: str, http_url: str, data_dir: Path, log: Path):
        self.process, self.base_url, self.http_url, self.data_dir, self.log = (
            process, base_url, http_url, data_dir, log)

    def credentials(self) -> dict[str, tuple[str, str]]:
        rows = {}
        for line in (self.data_dir / "demo-credentials.txt").read_text().splitlines():
            if line and not line.startswith("#"):
                email, password, role = line.split("\t")
                rows[role] = (email, password)
        return rows

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)


@contextmanager
def run_server(tmp_path: Path, extra_env: dict | None = None, database_url: str | None = None,
               host: str = "127.0.0.1"):
    """``host``: the name the browser uses (passkeys need a name such as localhost, not an address)."""
    if database_url is None:
        with fresh_database() as fresh, run_server(tmp_path, extra_env, fresh or "", host) as server:
            yield server
        return
    port, redirect_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
    env.update(RP_DATA_DIR=str(data_dir), RP_PORT=str(port), RP_REDIRECT_PORT=str(redirect_port),
               RP_BASE_URL=f"https://{host}:{port}")
    if host != "127.0.0.1":
        env["RP_ALLOWED_HOSTS"] = f"{host},127.0.0.1"
    env.update(extra_env or {})
    if database_url:
        env["RP_DATABASE_URL"] = database_url
    with log.open("wb") as out:
        # umask 022, as from a login shell (this test process has Rallypoint's own 077 by now): the server
        # must make its files owner-only itself.
        process = subprocess.Popen([sys.executable, "-m", "rallypoint", "run"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=tmp_path, umask=0o022)
    server = RunningServer(process, f"https://{host}:{port}", f"http://127.0.0.1:{redirect_port}",
                           data_dir, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_ready(server: RunningServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"rallypoint run exited early:\n{server.output()}")
        try:
            with urllib.request.urlopen(server.base_url + "/readyz", context=insecure_context(), timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"rallypoint run did not become ready:\n{server.output()}")
