"""Configuration: strict parsers that fail loudly, and a database URL for SQLite or PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rallypoint.lib import env


def test_booleans_and_numbers_must_be_what_they_say(monkeypatch):
    monkeypatch.setenv("RP_X_BOOL", "yes")
    assert env.env_bool("RP_X_BOOL", False) is True
    monkeypatch.setenv("RP_X_BOOL", "maybe")
    with pytest.raises(env.ConfigError, match="true or false"):
        env.env_bool("RP_X_BOOL", False)
    monkeypatch.setenv("RP_X_INT", "8o")
    with pytest.raises(env.ConfigError, match="whole number"):
        env.env_int("RP_X_INT", 1)
    monkeypatch.setenv("RP_X_INT", "0")
    with pytest.raises(env.ConfigError, match="at least 1"):
        env.env_int("RP_X_INT", 1, minimum=1)


def test_secrets_come_from_a_file_too(monkeypatch, tmp_path):
    secret = tmp_path / "s"
    secret.write_text("from-file\n")
    monkeypatch.setenv("RP_X_SECRET_FILE", str(secret))
    assert env.env_secret("RP_X_SECRET") == "from-file"
    monkeypatch.setenv("RP_X_SECRET", "direct")
    with pytest.raises(env.ConfigError, match="not both"):
        env.env_secret("RP_X_SECRET")


def test_database_urls(tmp_path):
    sqlite = env.parse_database_url(f"sqlite:///{tmp_path}/db.sqlite3", base_dir=tmp_path)
    assert sqlite["ENGINE"].endswith("sqlite3") and sqlite["NAME"] == f"{tmp_path}/db.sqlite3"
    assert "journal_mode=WAL" in sqlite["OPTIONS"]["init_command"]
    relative = env.parse_database_url("sqlite:///data/x.sqlite3", base_dir=Path("/srv"))
    assert relative["NAME"] == "/srv/data/x.sqlite3"
    pg = env.parse_database_url("postgresql://rp:p%40ss@db.local:6543/rallypoint", base_dir=tmp_path)
    assert (pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"], pg["NAME"]) == (
        "rp", "p@ss", "db.local", "6543", "rallypoint")
    tls = env.parse_database_url("postgresql://rp@db/rp?sslmode=verify-full&sslrootcert=/etc/ca.pem", base_dir=tmp_path)
    assert tls["OPTIONS"] == {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem",
                              "pool": {"min_size": 1, "max_size": 20, "timeout": 10.0, "max_idle": 300}}
    assert tls["CONN_MAX_AGE"] == 0  # the pool keeps the connections; Django must not hold them
    for bad in ("mysql://x/y", "postgresql://host/", "postgresql://h/db?timeout=3"):
        with pytest.raises(env.ConfigError):
            env.parse_database_url(bad, base_dir=tmp_path)


def _start(extra: dict, tmp_path) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
    environ.update(RP_DATA_DIR=str(tmp_path), **extra)
    return subprocess.run([sys.executable, "-m", "rallypoint", "check"], env=environ, capture_output=True,
                          text=True, timeout=60)


def test_a_misspelt_variable_stops_the_start(tmp_path):
    result = _start({"RP_DATABSE_URL": "sqlite:///x"}, tmp_path)
    assert result.returncode != 0
    assert "unknown configuration variable(s): RP_DATABSE_URL" in result.stderr


def test_a_bad_value_stops_the_start(tmp_path):
    result = _start({"RP_PORT": "eighty"}, tmp_path)
    assert result.returncode != 0 and "RP_PORT must be a whole number" in result.stderr
    assert _start({}, tmp_path).returncode == 0


def test_the_readme_lists_every_variable(settings):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("## Production", 1)[0]
    documented = set(re.findall(r"`(RP_[A-Z_]+)`", table))
    known = {name for name in env._known if not name.startswith("RP_X_")}
    read = {name for name in known if not (name.endswith("_FILE") and name.removesuffix("_FILE") in known)}
    assert read - documented == set(), "document these variables in the README"
    assert documented - read == set(), "the README names variables nobody reads"


def test_behind_a_proxy_the_proxy_must_be_named(tmp_path):
    result = _start({"RP_BEHIND_PROXY": "true"}, tmp_path)
    assert result.returncode != 0 and "RP_BEHIND_PROXY=true needs RP_TRUSTED_PROXIES" in result.stderr
    assert _start({"RP_BEHIND_PROXY": "true", "RP_TRUSTED_PROXIES": "127.0.0.1"}, tmp_path).returncode == 0
