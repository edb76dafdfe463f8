"""The one settings file. Everything configurable is an ``RP_*`` environment variable.

Defaults are the embedded ones: SQLite in the data directory, worker in-process,
HTTPS with a certificate of a local certificate authority. See README.md for the full table.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from rallypoint.lib.env import (
    ConfigError,
    check_unknown,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_secret,
    env_str,
    parse_database_url,
)
from rallypoint.lib.files import PRIVATE_UMASK, make_private
from rallypoint.lib.net import parse_networks

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(env_str("RP_DATA_DIR", "data")).resolve()
# Owner-only, from here on, for everything any entry point of this process creates (the database and
# its -wal/-shm files, the e-mail outbox, keys), and for what already is in the data directory.
os.umask(PRIVATE_UMASK)
make_private(DATA_DIR)


def _ensure_private_file(path: Path, make) -> str:
    """Return the content of ``path``, creating it (mode 0600) with ``make()`` first if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(make())
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = env_secret("RP_SECRET_KEY") or _ensure_private_file(
    DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50)
)
if len(SECRET_KEY) < 32:
    raise ConfigError("RP_SECRET_KEY must be at least 32 characters long")

DEBUG = env_bool("RP_DEBUG", False)

LISTEN_HOST = env_str("RP_HOST", "127.0.0.1")
PORT = env_int("RP_PORT", 8443, minimum=1, maximum=65535)
REDIRECT_PORT = env_int("RP_REDIRECT_PORT", 8000, minimum=0, maximum=65535)
TLS = env_bool("RP_TLS", True)
TLS_DIR = DATA_DIR / "tls"
TLS_CERT_FILE = env_str("RP_TLS_CERT_FILE", "")
TLS_KEY_FILE = env_str("RP_TLS_KEY_FILE", "")
# Without a certificate of the operator's own, the server's is signed by a certificate authority of this
# installation, made on first start in TLS_DIR (lib/tls.py).
TLS_LOCAL_CA = not (TLS_CERT_FILE or TLS_KEY_FILE)
TLS_CERT_FILE = TLS_CERT_FILE or str(TLS_DIR / "cert.pem")
TLS_KEY_FILE = TLS_KEY_FILE or str(TLS_DIR / "key.pem")
BEHIND_PROXY = env_bool("RP_BEHIND_PROXY", False)
# A host name, not an address: browsers accept passkeys (WebAuthn) only for names. localhost is 127.0.0.1.
BASE_URL = env_str("RP_BASE_URL", f"https://localhost:{PORT}").rstrip("/")
RUN_WORKER_IN_PROCESS = env_bool("RP_WORKER_IN_PROCESS", True)
DEMO = env_bool("RP_DEMO", True)
# What `rallypoint setup` does not have to ask for (its options take precedence).
SETUP = {"organization": env_str("RP_SETUP_ORGANIZATION", ""), "site": env_str("RP_SETUP_SITE", ""),
         "full_name": env_str("RP_SETUP_NAME", ""), "email": env_str("RP_SETUP_EMAIL", "")}

ALLOWED_HOSTS = env_list("RP_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("RP_CSRF_TRUSTED_ORIGINS", [BASE_URL])

DATABASES = {
    "default": parse_database_url(
        env_str("RP_DATABASE_URL", f"sqlite:///{DATA_DIR / 'rallypoint.sqlite3'}"), base_dir=Path.cwd(),
        pool_size=env_int("RP_DATABASE_POOL_SIZE", 20, minimum=2, maximum=500),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Tests use a real file (WAL, concurrent connections), not an in-memory database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-rallypoint.sqlite3")}
    # Each of the web process's request threads keeps its connection (SQLite has no pool): opening one, with
    # its PRAGMAs, was a fifth of a small API request's time. Django still drops one that became unusable.
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # its copy of Swagger UI, served from our static files for /api/docs (no CDN)
    "rallypoint.accounts",
    "rallypoint.tenants",
    "rallypoint.people",
    "rallypoint.audit",
    "rallypoint.ops",
    "rallypoint.alarms",
    "rallypoint.evacuation",
    "rallypoint.notify",
    "rallypoint.realtime",
    "rallypoint.integrations",
    "rallypoint.web",
]

MIDDLEWARE = [
    "rallypoint.web.middleware.SecurityHeadersMiddleware",
    "rallypoint.web.middleware.SensitiveQueryParameterMiddleware",
    "rallypoint.web.middleware.CleanInputMiddleware",
    "rallypoint.api.middleware.JsonBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "rallypoint.web.middleware.CsrfMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "rallypoint.accounts.middleware.SessionLifetimeMiddleware",
    "rallypoint.web.middleware.UserLanguageMiddleware",
    "rallypoint.accounts.mfa_middleware.SecondFactorEnrollmentMiddleware",
    "rallypoint.tenants.middleware.CurrentSiteMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "rallypoint.urls"
ASGI_APPLICATION = "rallypoint.asgi.application"
WSGI_APPLICATION = "rallypoint.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rallypoint.tenants.context_processors.current_site",
                "rallypoint.web.context_processors.csp_nonce",
            ],
        },
    }
]

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "rallypoint.accounts.passwords.ContextPasswordValidator"},
    {"NAME": "rallypoint.accounts.passwords.GuessabilityPasswordValidator"},
]
# Invitation and reset links: 24 hours (seed: "einmaliger Weblink, 24h").
PASSWORD_RESET_TIMEOUT = 24 * 3600

# Server-side sessions (one row each, listed on "My sessions"), closed after inactivity and
# after an absolute lifetime; the cookie carries only a random key.
SESSION_ENGINE = "rallypoint.accounts.sessions"
SESSION_COOKIE_AGE = env_int("RP_SESSION_IDLE_MINUTES", 30, minimum=1) * 60
SESSION_MAX_AGE_HOURS = env_int("RP_SESSION_MAX_HOURS", 12, minimum=1)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = TLS or BEHIND_PROXY
# "__Host-": the browser accepts the cookie only over HTTPS, for this host and path "/".
SESSION_COOKIE_NAME = "__Host-rp_session" if SESSION_COOKIE_SECURE else "rp_session"
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_NAME = "__Host-rp_csrf" if SESSION_COOKIE_SECURE else "rp_csrf"
APP_TOKEN_IDLE_DAYS = env_int("RP_APP_TOKEN_IDLE_DAYS", 30, minimum=1)
TRUSTED_PROXIES = parse_networks(env_list("RP_TRUSTED_PROXIES", []))
if BEHIND_PROXY and not TRUSTED_PROXIES:
    # Otherwise every client would share the proxy's address, and one attacker's failed sign-ins
    # would make everybody wait.
    raise ConfigError("RP_BEHIND_PROXY=true needs RP_TRUSTED_PROXIES (the address of your reverse proxy)")
# Proof of work on sign-in, password-link request and invitation: PBKDF2 iterations per try and the
# largest counter the browser may have to reach (it tries counters from 0 up).
POW_COST = env_int("RP_POW_COST", 500, minimum=1, maximum=100_000)
POW_MAX_COUNTER = env_int("RP_POW_MAX_COUNTER", 2500, minimum=2, maximum=1_000_000)
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if SESSION_COOKIE_SECURE:
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = env_choice("RP_LANGUAGE", "en", {"en", "de"})
LANGUAGES = [("de", _("German")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "rp_language"
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SAMESITE = "Lax"
USE_I18N = True
# English dates in British style with the 24-hour clock (web/formats/en); German uses Django's German formats.
FORMAT_MODULE_PATH = ["rallypoint.web.formats"]
TIME_ZONE = env_str("RP_TIME_ZONE", "Europe/Berlin")
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_MIMETYPES = {".webmanifest": "application/manifest+json"}
WHITENOISE_AUTOREFRESH = DEBUG

# E-mail: SMTP when RP_SMTP_HOST is set, otherwise files in the data directory's outbox.
SMTP_HOST = env_str("RP_SMTP_HOST", "")
DEFAULT_FROM_EMAIL = env_str("RP_MAIL_FROM", "Rallypoint <rallypoint@localhost>")
EMAIL_HOST = SMTP_HOST or "localhost"
EMAIL_PORT = env_int("RP_SMTP_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("RP_SMTP_USER", "")
EMAIL_HOST_PASSWORD = env_secret("RP_SMTP_PASSWORD", "") or ""
_smtp_security = env_choice("RP_SMTP_SECURITY", "starttls", {"starttls", "tls", "none"})
EMAIL_USE_TLS = _smtp_security == "starttls"
EMAIL_USE_SSL = _smtp_security == "tls"
EMAIL_TIMEOUT = 20
if SMTP_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = DATA_DIR / "outbox"

# Personal data at rest: AES-256-GCM keys ("k1:BASE64,k2:BASE64", newest last) and the blind-index key,
# or else a key file in the data directory, made on first start (mode 0600).
ENCRYPTION_KEYS = env_secret("RP_ENCRYPTION_KEYS")
ENCRYPTION_INDEX_KEY = env_secret("RP_ENCRYPTION_INDEX_KEY")
if bool(ENCRYPTION_KEYS) != bool(ENCRYPTION_INDEX_KEY):
    raise ConfigError("set both RP_ENCRYPTION_KEYS and RP_ENCRYPTION_INDEX_KEY, or neither")
KEYRING_FILE = Path(env_str("RP_KEYRING_FILE", str(DATA_DIR / "keyring.json")))
# Each person's data key (crypto-shredding): a SQLite file of its own, or a postgresql:// URL of a database
# of its own; never the main database, whose backups must not hold the keys (docs/privacy.md).
PERSON_KEYSTORE = env_str("RP_PERSON_KEYSTORE", str(DATA_DIR / "person-keys.sqlite3"))

# Alarm delivery. A claimed delivery whose worker died is taken over when its lease runs out.
REDIS_URL = env_str("RP_REDIS_URL", "")
if REDIS_URL and REDIS_URL.split(":", 1)[0] not in ("redis", "rediss", "unix"):
    raise ConfigError("RP_REDIS_URL must start with redis://, rediss:// or unix://")
DELIVERY_LEASE_SECONDS = env_int("RP_DELIVERY_LEASE_SECONDS", 30, minimum=1, maximum=3600)
DELIVERY_MAX_ATTEMPTS = env_int("RP_DELIVERY_MAX_ATTEMPTS", 8, minimum=1, maximum=100)
WORKER_THREADS = env_int("RP_WORKER_THREADS", 16, minimum=1, maximum=256)
WORKER_BATCH = env_int("RP_WORKER_BATCH", 500, minimum=1, maximum=10_000)
# The live stream keeps its events this long for apps that reconnect (the alarms themselves stay).
STREAM_RETENTION_DAYS = env_int("RP_STREAM_RETENTION_DAYS", 7, minimum=1)
# One-tap answer links in e-mail and SMS stay valid this long (and work once).
ANSWER_LINK_MINUTES = env_int("RP_ANSWER_LINK_MINUTES", 120, minimum=1, maximum=7 * 24 * 60)
# SMS and voice calls go through an HTTP gateway (see docs/channels.md); empty: not configured.
SMS_GATEWAY_URL = env_str("RP_SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = env_secret("RP_SMS_GATEWAY_TOKEN", "") or ""
VOICE_GATEWAY_URL = env_str("RP_VOICE_GATEWAY_URL", "")
VOICE_GATEWAY_TOKEN = env_secret("RP_VOICE_GATEWAY_TOKEN", "") or ""
# Web Push: the VAPID key pair (made on first start) and the push services a browser may name.
VAPID_KEY_FILE = Path(env_str("RP_VAPID_KEY_FILE", str(DATA_DIR / "vapid.pem")))
PUSH_SERVICE_HOSTS = env_list("RP_PUSH_SERVICE_HOSTS", [
    "fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com", "*.notify.windows.com",
])

AUDIT_RETENTION_DAYS = env_int("RP_AUDIT_RETENTION_DAYS", 90, minimum=1)
# A forgotten person's documented actions (answers, status reports) show as "deleted person #N" this long,
# then go.
FORGOTTEN_DAYS = env_int("RP_FORGOTTEN_DAYS", 90, minimum=1, maximum=366)
# The defaults of what an organisation may change on its "Data retention" page (within the limits in
# people.retention; docs/privacy.md says why): ended alarms' personal parts, unused push devices, deactivated
# people.
ALARM_RECORD_DAYS = env_int("RP_ALARM_RECORD_DAYS", 365, minimum=30, maximum=3650)
PUSH_IDLE_DAYS = env_int("RP_PUSH_IDLE_DAYS", 60, minimum=7, maximum=365)
DEACTIVATED_DAYS = env_int("RP_DEACTIVATED_DAYS", 180, minimum=30, maximum=3650)
# Messages that belong to no alarm (password links, reminders, approval requests) stay in the log this long.
MESSAGE_LOG_DAYS = env_int("RP_MESSAGE_LOG_DAYS", 30, minimum=1, maximum=366)
# A four-eyes request waits this long for a second administrator, then expires.
APPROVAL_HOURS = env_int("RP_APPROVAL_HOURS", 24, minimum=1, maximum=168)
#: Every this many days each site gets an access review (who may sign in, with which role).
ACCESS_REVIEW_DAYS = env_int("RP_ACCESS_REVIEW_DAYS", 90, minimum=7, maximum=366)
SECURITY_EVENT_RETENTION_DAYS = env_int("RP_SECURITY_EVENT_RETENTION_DAYS", 90, minimum=1)
#: Presence rows are the last known place of each person in an evacuation; kept this long (docs/privacy.md).
PRESENCE_HISTORY_DAYS = env_int("RP_PRESENCE_HISTORY_DAYS", 1, minimum=1, maximum=30)
SUPPORT_EMAIL_DOMAIN = env_str("RP_SUPPORT_EMAIL_DOMAIN", "support.rallypoint.example")
CSV_IMPORT_MAX_ROWS = env_int("RP_CSV_IMPORT_MAX_ROWS", 5000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# A whole multipart/form-data request (a 5 MB PDF and the form around it); larger ones get 413 before
# Django reads them (rallypoint/web/edge.py).
MAX_UPLOAD_REQUEST_BYTES = 12 * 1024 * 1024

LOG_LEVEL = env_choice("RP_LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "rallypoint.lib.jsonlog.RedactionFilter"}},
    "formatters": {"json": {"()": "rallypoint.lib.jsonlog.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "uvicorn": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        # At DEBUG these dump template contexts and SQL parameters, i.e. personal data: never below INFO.
        "django.template": {"level": "INFO"},
        "django.db.backends": {"level": "INFO"},
        # At DEBUG it logs every request's path: a browser's push endpoint (personal data), webhook tokens.
        "urllib3": {"level": "INFO"},
    },
}

check_unknown()
