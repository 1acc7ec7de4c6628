"""Settings come from the environment, with safe development defaults (docs/DESIGN.md section 7)."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ALD_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default):
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEV_SECRET_KEY = "dev-insecure-ald-portal-key-change-me"
DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off: the development key is public.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "django_tables2",
    "django_q",
    "ald_portal",
    "licensing",
    "devices",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ald_portal.middleware.RejectNulCharacters",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ald_portal.urls"
WSGI_APPLICATION = "ald_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# --- database -----------------------------------------------------------------------------------
DEFAULT_SQLITE_PATH = VAR_DIR / "ald_portal.sqlite3"
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the queue worker writes; IMMEDIATE transactions take the
    # write lock up front so two processes wait on each other instead of failing "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_SQLITE_NAME") or None}
DB_IS_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if not os.environ.get("DATABASE_URL"):
    # owner only: the database holds the UMS ID's private key, the folder the license signing key
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- queue (docs/DESIGN.md section 5) ----------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
Q_CLUSTER = {
    # The queue's name: its key on the Redis broker, so installations sharing a Redis keep apart.
    "name": os.environ.get("Q_CLUSTER_NAME", "ald-portal"),
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": 120,
    "retry": 300,
    "max_attempts": 3,
    "catch_up": False,
    "poll": 0.2,
    "save_limit": 500,
    "ack_failures": True,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- licensing ------------------------------------------------------------------------------------
ILS_URL = os.environ.get("ILS_URL", "")
# The HTTP licensing client (devices/ils.py): seconds to connect and to wait for an answer, and how
# often a request that got no answer (or a 5xx) is tried again, with exponential backoff.
ILS_CONNECT_TIMEOUT = float(os.environ.get("ILS_CONNECT_TIMEOUT", "5"))
ILS_READ_TIMEOUT = float(os.environ.get("ILS_READ_TIMEOUT", "30"))
ILS_RETRIES = int(os.environ.get("ILS_RETRIES", "3"))
ILS_BACKOFF_SECONDS = float(os.environ.get("ILS_BACKOFF_SECONDS", "0.5"))
ALD_BATCH_SIZE = int(os.environ.get("ALD_BATCH_SIZE", "2000"))
# How long a worker may hold a device's license request before another worker takes it over.
ALD_CLAIM_SECONDS = int(os.environ.get("ALD_CLAIM_SECONDS", "120"))
PORTAL_UMS_NAME = os.environ.get("PORTAL_UMS_NAME", "ALD Portal UMS")
# The licensing service's Ed25519 key for license files; made on first use with mode 0600.
LICENSE_SIGNING_KEY_PATH = os.environ.get(
    "LICENSE_SIGNING_KEY_PATH", str(VAR_DIR / "license-signing-key.pem")
)

# --- auth, i18n, static -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "licensing:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
FORMAT_MODULE_PATH = ["ald_portal.formats"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic fills this for production; in development WhiteNoise serves from the app folders.
STATIC_ROOT = None if DEBUG else BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

DJANGO_TABLES2_TEMPLATE = "django_tables2/table.html"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "devices": {"handlers": ["console"], "level": os.environ.get("ALD_LOG_LEVEL", "INFO")},
        "licensing": {"handlers": ["console"], "level": os.environ.get("ALD_LOG_LEVEL", "INFO")},
    },
}
