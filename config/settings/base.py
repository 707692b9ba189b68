"""Settings shared by every environment. Everything that differs per deployment comes from the environment."""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("ECRM_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-insecure-key-change-me-in-production-0123456789")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_htmx",
    "huey.contrib.djhuey",
    "channels",
    "ecrm.core",
    "ecrm.customers",
    "ecrm.commerce",
    "ecrm.ingest",
    "ecrm.analytics",
    "ecrm.conversations",
    "ecrm.service",
    "ecrm.knowledge",
    "ecrm.portal",
    "ecrm.routing",
    "ecrm.webhooks",
    "ecrm.workflows",
]

MIDDLEWARE = [
    "ecrm.core.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ecrm.core.context_processors.console",
            ],
        },
    },
]

# --- Database: SQLite (WAL) by default, PostgreSQL when DATABASE_URL is set.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(VAR_DIR / "ecrm.sqlite3")),
            "OPTIONS": {
                # WAL lets readers proceed while one writer writes; IMMEDIATE takes the write lock at
                # BEGIN so two writers queue on busy_timeout instead of failing with 'database is locked'.
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                    "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=268435456; PRAGMA cache_size=-65536;"
                ),
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # Keep each thread's connection: the live-chat consumers run their database work on one
            # long-lived thread, and reopening SQLite per message (PRAGMAs, a cold page cache) cost
            # more than the message's own queries. Per-request threads drop theirs when they end.
            "CONN_MAX_AGE": int(os.environ.get("SQLITE_CONN_MAX_AGE", "300")),
            "CONN_HEALTH_CHECKS": True,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")

# --- Cache: local memory by default, Redis when REDIS_URL is set (shared by all processes).
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Channels (live updates): Redis when REDIS_URL is set; otherwise in memory per process, relayed
# to the install's other processes (the worker's events reach the web process's sockets) over Unix
# datagram sockets in var/live/ (ecrm/core/live_layer.py).
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "ecrm.core.live_layer.RelayChannelLayer",
            # a console socket can get a burst of events (200 chats): room for it before events drop
            "CONFIG": {"folder": str(VAR_DIR / "live"), "capacity": 1000},
        }
    }

# --- Background tasks: Huey. SQLite file next to the database (durable, no server), Redis at scale.
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.PriorityRedisHuey",
        "name": "ecrm",
        "url": REDIS_URL,
        "immediate": False,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }
else:
    HUEY = {
        "huey_class": "ecrm.core.queue.EcrmSqliteHuey",
        "name": "ecrm",
        "filename": os.environ.get("HUEY_SQLITE_PATH", str(VAR_DIR / "tasks.sqlite3")),
        "immediate": False,
        "consumer": {"workers": 2, "worker_type": "thread"},
    }

# --- Auth
AUTH_USER_MODEL = "core.User"
LOGIN_URL = "core:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "core:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Login throttling: lock a username+IP pair after 5 failures for 15 minutes.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "core/lockout.html"
AXES_VERBOSE = False

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- i18n
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_TZ = True

# --- Static and uploaded files
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(
    exist_ok=True
)  # WhiteNoise serves from the finders in development; it warns if this is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"
# Files from customers (mail attachments, chat uploads) live outside the web root and are served
# only through permission-checked download views, never by URL.
PRIVATE_FILES_ROOT = Path(os.environ.get("ECRM_PRIVATE_FILES", VAR_DIR / "private"))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024  # the API's own limit (ECRM_MAX_BATCH_BYTES) is checked first

# --- eCRM
ECRM_DEFAULT_PHONE_REGION = os.environ.get("ECRM_DEFAULT_PHONE_REGION", "CN")
ECRM_MAX_BATCH_ITEMS = 1000
ECRM_MAX_BATCH_BYTES = 5 * 1024 * 1024
ECRM_MAX_EVENT_BYTES = 64 * 1024
# Background job ledger (ecrm/core/jobs.py, docs/operations.md): a running job whose worker has not beaten
# for this long (another host) is returned to the queue; finished jobs are forgotten after the keep days.
ECRM_JOB_ORPHAN_AFTER = int(os.environ.get("ECRM_JOB_ORPHAN_AFTER", "60"))
ECRM_JOB_LEDGER_KEEP_DAYS = int(os.environ.get("ECRM_JOB_LEDGER_KEEP_DAYS", "7"))
ECRM_PAGE_SIZE = 50
ECRM_DEMO_CUSTOMERS = int(os.environ.get("ECRM_DEMO_CUSTOMERS", "5000"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Contact center
ECRM_MAX_ATTACHMENT_BYTES = int(os.environ.get("ECRM_MAX_ATTACHMENT_BYTES", 25 * 1024 * 1024))
ECRM_MAX_RAW_EMAIL_BYTES = int(os.environ.get("ECRM_MAX_RAW_EMAIL_BYTES", 60 * 1024 * 1024))
# --- Outbound mail: Django's SMTP settings from the environment. Without EMAIL_HOST (a laptop, the demo)
# each message is written to var/outbox/ instead, so replies, surveys and sign-in links "send" and can
# be read there rather than failing for want of a mail server. EMAIL_BACKEND overrides both.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "").lower() in ("1", "true", "yes")
EMAIL_USE_SSL = os.environ.get("EMAIL_USE_SSL", "").lower() in ("1", "true", "yes")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "eCRM <noreply@localhost>")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "outbox"))

# The address customers reach this server at: links in mail (surveys, sign-in links, help articles).
ECRM_PUBLIC_URL = os.environ.get("ECRM_PUBLIC_URL", f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")

# --- Outbound HTTP (ecrm/core/http.py) and outgoing webhooks
# Destinations the SSRF guard would refuse (private, loopback, ...) but an admin trusts: host, host:port, IP,
# IP:port or CIDR, comma-separated. Admins add more in Settings -> Webhooks.
ECRM_OUTBOUND_ALLOWLIST = [
    h.strip() for h in os.environ.get("ECRM_OUTBOUND_ALLOWLIST", "").split(",") if h.strip()
]
ECRM_WEBHOOK_TIMEOUT = float(os.environ.get("ECRM_WEBHOOK_TIMEOUT", "10"))
ECRM_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("ECRM_WEBHOOK_MAX_ATTEMPTS", "6"))
ECRM_WEBHOOK_RETRY_SCHEDULE = [60, 300, 1800, 7200, 21600]  # seconds after attempt 1, 2, ... (+-10% jitter)
ECRM_WEBHOOK_DISABLE_AFTER = int(
    os.environ.get("ECRM_WEBHOOK_DISABLE_AFTER", "5")
)  # deliveries given up in a row
