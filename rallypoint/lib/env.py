"""Strict parsers for ``RP_*`` environment variables.

Every setting Rallypoint reads from the environment goes through one of these
functions. A value that cannot be parsed fails loudly at start-up instead of
silently falling back to a default, and an ``RP_*`` variable nobody reads is
reported as a probable typo (see :func:`check_unknown`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

_known: set[str] = set()


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def _raw(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    _known.add(name)
    env = os.environ if environ is None else environ
    return env.get(name)


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, not {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [part.strip() for part in value.split(",") if part.strip()]


def env_choice(name: str, default: str, choices: set[str]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(sorted(choices))}, not {value!r}")
    return value


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from ``NAME`` or from the file named by ``NAME_FILE``."""
    direct = _raw(name)
    path = _raw(f"{name}_FILE")
    if direct is not None and path is not None:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return default if direct is None else direct


#: Seconds a request waits for a free PostgreSQL connection before it is answered 503.
POOL_TIMEOUT = 10.0


def parse_database_url(url: str, *, base_dir: Path, pool_size: int = 20) -> dict:
    """Turn ``sqlite:///path`` or ``postgresql://user:pw@host:port/db`` into Django settings.

    PostgreSQL connections come from a pool of at most ``pool_size`` per process: a burst of
    requests (each in its own thread) then waits its turn for a connection instead of opening one
    each and running past the server's ``max_connections``. A request that gets none within
    :data:`POOL_TIMEOUT` seconds is answered 503 with Retry-After (``web/errors.py``)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        raw_path = unquote(parts.path)
        if url.startswith("sqlite:////"):
            path = Path("/" + raw_path.lstrip("/"))
        else:
            path = base_dir / raw_path.lstrip("/")
        return {
            "ENGINE": "rallypoint.lib.sqlite3",
            "NAME": str(path),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                ),
            },
        }
    if parts.scheme in {"postgres", "postgresql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ConfigError("RP_DATABASE_URL: the PostgreSQL URL must name a database")
        options = {}
        for key, value in parse_qsl(parts.query):
            if key not in {"sslmode", "sslrootcert", "sslcert", "sslkey"}:
                raise ConfigError(f"RP_DATABASE_URL: unknown option {key!r} (sslmode, sslrootcert, sslcert, sslkey)")
            options[key] = value
        pool = {"min_size": 1, "max_size": pool_size, "timeout": POOL_TIMEOUT, "max_idle": 300}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "OPTIONS": {**options, "pool": pool},
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 0,  # a connection goes back to the pool when its request ends
            "CONN_HEALTH_CHECKS": True,
        }
    raise ConfigError(f"RP_DATABASE_URL: unsupported scheme {parts.scheme!r} (use sqlite or postgresql)")


def check_unknown(environ: Mapping[str, str] | None = None) -> None:
    """Fail on an ``RP_*`` variable that no setting reads: most likely a typo."""
    env = os.environ if environ is None else environ
    unknown = sorted(
        key
        for key in env
        if key.startswith("RP_") and key not in _known and not key.startswith("RP_TEST_")
    )
    if unknown:
        raise ConfigError(f"unknown configuration variable(s): {', '.join(unknown)}")
