"""Settings come from the environment (django-environ); the defaults are the embedded
development stack: SQLite, Celery tasks run in-process, the dry-run provisioning backend."""

import os
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEBUG = env.bool("DEBUG", default=False)
# The fallback key only exists so a fresh clone starts; `check --deploy` rejects it.
SECRET_KEY = env("SECRET_KEY", default="django-insecure-development-only-key")
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# Salt for the key that encrypts service credentials at rest (django-fernet-encrypted-fields).
SALT_KEY = env.list("FIELD_ENCRYPTION_SALT", default=["hosted-panel-service-credentials"])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, its site behind the panel's sign-in and second factor.
    "panel.apps.PanelAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "mptt",
    "auditlog",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_filters",
    "django_tables2",
    "csp",
    "django_prometheus",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "servers",
    "servicplans",
    "provisioning",
    "panel.api",
]

MIDDLEWARE = [
    # First: /healthz and /readyz answer any Host header, over HTTP (see its docstring).
    "panel.middleware.ProbeMiddleware",
    # First and last: django-prometheus times every request around the other middleware.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the account's choice (kept in the session at sign-in), else the
    # browser's Accept-Language; see panel.middleware.LanguageMiddleware.
    "panel.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # auditlog's, with a correlation id per request: see provisioning.changelog.
    "panel.middleware.ChangeLogMiddleware",
    # Last, as django-axes requires: it turns a lockout raised during sign-in into a page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "panel.urls"
WSGI_APPLICATION = "panel.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Seconds a web process keeps its database connection between requests (0: a new one per
# request); a kept connection is checked before each request reuses it.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# django-prometheus's wrapper of the same backend counts queries, errors and their latency.
_PROMETHEUS_ENGINES = {"postgresql", "sqlite3", "mysql", "postgis", "spatialite"}
if DATABASES["default"]["ENGINE"].rpartition(".")[2] in _PROMETHEUS_ENGINES:
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends." + (
        DATABASES["default"]["ENGINE"].rpartition(".")[2])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The users list's covering index (INCLUDE) exists on PostgreSQL; SQLite builds it without
# the included columns, which is all the development database needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Languages ---
# English and German; the browser's Accept-Language picks one unless the account chose
# (Account.language, on the Preferences page). Dates and numbers follow the language;
# panel/formats keeps English dates as ISO (2026-04-30 13:05) rather than en-us's.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["panel.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Change log ---
# Each entry's correlation id comes from the panel (one per request and per operation run),
# never from a request header: see provisioning.changelog.correlated.
AUDITLOG_CID_GETTER = "provisioning.changelog.correlation_id"

# --- Sign-in protection ---
# django-axes checks every sign-in (the panel's and the admin's) before the model backend.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
# Lock a login name per address, so an attacker cannot lock everyone out from one host.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
# Every login (panel accounts and admin staff) must enrol a TOTP device before it can use the
# panel or the admin. A login with a device gives its code at each sign-in either way.
REQUIRE_TWO_FACTOR = env.bool("REQUIRE_TWO_FACTOR", default=False)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Hosted Organizations")
# The admin lists second factors and can delete them, but never shows a TOTP key, its QR code
# or recovery codes: staff reset a login's second factor, they do not copy it.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
                    if DEBUG else "django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="panel@localhost")

# --- Security: on by default outside DEBUG so `check --deploy` passes. ---
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Only behind a proxy that sets X-Forwarded-Proto itself (and drops the client's) may the
# panel believe it: otherwise any client could claim HTTPS.
TRUSTED_PROXY = env.bool("TRUSTED_PROXY", default=False)
if TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy (django-csp): the panel's own static files and nothing else; no
# inline script or style, no frames, forms posted only to the panel itself.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Cache: the API's rate limits (a shared Redis in production: CACHE_URL=redis://...) ---
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- The JSON API (panel/api, docs/api.md) ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "panel.api.authentication.TokenAuthentication",
        "panel.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["panel.api.permissions.HasPanelAccount"],
    "DEFAULT_THROTTLE_CLASSES": ["panel.api.throttling.LoginRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"login": env("API_RATE_LIMIT", default="600/minute")},
    "DEFAULT_PAGINATION_CLASS": "panel.api.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "panel.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hosted Organizations API",
    "DESCRIPTION": "Everything a reseller or customer administrator does in the panel, for "
                   "billing systems and automation. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are public (the project is open source); no session check.
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "panel.api.schema.add_error_responses"],
    "TAGS": [{"name": n} for n in ("organizations", "users", "operations", "events", "domains",
                                   "peers", "catalog", "tokens")],
    "ENUM_NAME_OVERRIDES": {
        "OperationStateEnum": "provisioning.models.OperationState.choices",
        "TokenStateEnum": ["active", "expired", "revoked"],
    },
}
# How long an Idempotency-Key's first answer is kept for a retried POST.
IDEMPOTENCY_KEY_HOURS = env.int("IDEMPOTENCY_KEY_HOURS", default=24)

# --- Celery ---
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="celery")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A redelivered task must not wait the default hour after a lost worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
    # How often a worker sweeps for tasks of lost workers to redeliver (kombu's default
    # sweep is only every 100 s).
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=30),
    "unacked_restore_throttle": 1,
    # A worker killed during a sweep leaves the sweep's lock behind until it expires.
    "unacked_mutex_expire": env.int("CELERY_UNACKED_MUTEX_EXPIRE", default=60),
}

# --- Provisioning ---
PROVISIONING_BACKEND = env("PROVISIONING_BACKEND", default="dryrun")
if PROVISIONING_BACKEND not in ("dryrun", "live"):
    raise environ.ImproperlyConfigured("PROVISIONING_BACKEND must be 'dryrun' or 'live'")

# Journaled operations: attempts before giving up, the worker's lease on a running operation
# (a dead worker's operation is taken over once it expires), and the backoff base in seconds.
OPERATION_MAX_ATTEMPTS = env.int("OPERATION_MAX_ATTEMPTS", default=8)
OPERATION_LEASE_SECONDS = env.int("OPERATION_LEASE_SECONDS", default=180)
OPERATION_BACKOFF_BASE = env.float("OPERATION_BACKOFF_BASE", default=2.0)
# A queued operation this many seconds past its due time lost its task message (the broker
# was down or restarted) and is sent again; requeue_stale runs every REQUEUE_EVERY_SECONDS.
OPERATION_REDELIVER_AFTER = env.int("OPERATION_REDELIVER_AFTER", default=30)
REQUEUE_EVERY_SECONDS = env.float("REQUEUE_EVERY_SECONDS", default=15.0)

# WinRM timeouts (seconds): a silent Exchange server is given up on after the read timeout,
# and the operation is retried with backoff.
EXCHANGE_READ_TIMEOUT = env.float("EXCHANGE_READ_TIMEOUT", default=60.0)
EXCHANGE_OPERATION_TIMEOUT = env.float("EXCHANGE_OPERATION_TIMEOUT", default=50.0)

# Readiness (panel/health.py): workers and beat record a heartbeat this often, and one older
# than READINESS_MAX_AGE_SECONDS makes /readyz answer 503.
HEARTBEAT_EVERY_SECONDS = env.float("HEARTBEAT_EVERY_SECONDS", default=15.0)
READINESS_MAX_AGE_SECONDS = env.float("READINESS_MAX_AGE_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULER = "panel.health:BeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = HEARTBEAT_EVERY_SECONDS
# --- Alerts (provisioning.alerts) ---
# An operation that failed for good, or is not done this many minutes after it was
# requested, is e-mailed to its organization's administrators and its reseller's; beat looks
# every OPERATION_ALERT_EVERY_SECONDS. Failures older than the look-back when first seen
# (say, before alerts were switched on) are left to the provider's summary.
OPERATION_ALERT_AFTER_MINUTES = env.int("OPERATION_ALERT_AFTER_MINUTES", default=30)
OPERATION_ALERT_EVERY_SECONDS = env.float("OPERATION_ALERT_EVERY_SECONDS", default=60.0)
OPERATION_ALERT_LOOKBACK_HOURS = env.int("OPERATION_ALERT_LOOKBACK_HOURS", default=24)
# The provider's daily summary goes to staff with an e-mail address and to these addresses,
# at this hour (UTC).
PROVIDER_ALERT_EMAIL = env.list("PROVIDER_ALERT_EMAIL", default=[])
PROVIDER_SUMMARY_HOUR = env.int("PROVIDER_SUMMARY_HOUR", default=6)
# The panel's address as its users reach it, for links in e-mails (e.g. https://panel.example).
PANEL_URL = env("PANEL_URL", default="").rstrip("/")

CELERY_BEAT_SCHEDULE = {
    "requeue-stale-operations": {"task": "provisioning.tasks.requeue_stale_operations",
                                 "schedule": REQUEUE_EVERY_SECONDS},
    "reconcile-directory": {"task": "provisioning.tasks.reconcile_directory",
                            "schedule": env.float("RECONCILE_EVERY_SECONDS", default=3600.0)},
    "operation-alerts": {"task": "provisioning.tasks.send_operation_alerts",
                         "schedule": OPERATION_ALERT_EVERY_SECONDS},
    "provider-summary": {"task": "provisioning.tasks.send_provider_summary",
                         "schedule": crontab(hour=PROVIDER_SUMMARY_HOUR, minute=0)},
}

# --- Metrics (provisioning.metrics) ---
# /metrics answers only a request with `Authorization: Bearer <METRICS_TOKEN>`; with no token
# configured it does not exist (404).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# The directory that every process of the deployment (web, workers, beat) shares for its
# counters and histograms; empty: each process keeps its own, in memory (development).
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR:
    from .metrics_files import use_directory

    use_directory(PROMETHEUS_MULTIPROC_DIR)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"forbidden_on_one_line": {"()": "panel.request_log.ForbiddenOnOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "ldap3": {"level": "WARNING"},
        # Django's own console handler (in DEBUG) would print each record a second time
        # beside the root's: Django's records go to the root's handler only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["forbidden_on_one_line"]},
    },
}
