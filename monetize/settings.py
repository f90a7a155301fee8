"""Settings, read from the environment.

Every variable is listed with its default in README.md ("Configuration"). Nothing here needs a file:
`make run` and `make test` pass the resolved DATABASE_URL / REDIS_URL in the environment.
"""

import os
import warnings
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-change-me-" + "x" * 40)
# Tenants live on arbitrary domains; the tenant middleware answers 404 for a host that is no
# tenant's domain, so Django's own host check is left open by default.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

MONETIZE_PUBLIC_DOMAIN = env_str("MONETIZE_PUBLIC_DOMAIN", "localhost")
MONETIZE_TENANT_DOMAIN_SUFFIX = env_str("MONETIZE_TENANT_DOMAIN_SUFFIX", "localhost")
MONETIZE_KEY_MODE = env_str("MONETIZE_KEY_MODE", "test")
MONETIZE_ENCRYPTION_KEYS = env_list("MONETIZE_ENCRYPTION_KEYS", "")  # Fernet keys, newest first
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
# usage events: at most this many per request, timestamps at most this far ahead of the server's clock
METERING_MAX_BATCH = env_int("METERING_MAX_BATCH", 10_000)
METERING_MAX_FUTURE_SECONDS = env_int("METERING_MAX_FUTURE_SECONDS", 600)
# the nightly meter sync: tries per report when a provider is unavailable (backoff doubles from
# METER_SYNC_BACKOFF seconds), and how many days back closed periods are checked for late usage
METER_SYNC_TRIES = env_int("METER_SYNC_TRIES", 3)
METER_SYNC_BACKOFF = float(os.environ.get("METER_SYNC_BACKOFF", "0.5"))
METER_SYNC_LATE_DAYS = env_int("METER_SYNC_LATE_DAYS", 62)
DUNNING_GRACE_DAYS = env_int("DUNNING_GRACE_DAYS", 14)  # a past-due membership keeps its tier this long
# TrueType fonts for invoice PDFs (default: DejaVu Sans when installed; see billing/invoicing/pdf.py)
INVOICE_PDF_FONT = env_str("INVOICE_PDF_FONT", "")
INVOICE_PDF_FONT_BOLD = env_str("INVOICE_PDF_FONT_BOLD", "")
WEBHOOK_OUT_TIMEOUT_SECONDS = env_int("WEBHOOK_OUT_TIMEOUT_SECONDS", 10)
WEBHOOK_OUT_DISABLE_AFTER = env_int("WEBHOOK_OUT_DISABLE_AFTER", 50)
# per tenant: at most this many webhook endpoints, and at most this many deliveries in the broker's
# queue at once (the rest wait in the table and are admitted as those finish: fair across tenants)
WEBHOOK_ENDPOINTS_MAX = env_int("WEBHOOK_ENDPOINTS_MAX", 20)
WEBHOOK_OUT_TENANT_IN_FLIGHT = env_int("WEBHOOK_OUT_TENANT_IN_FLIGHT", 20)
# the inbox worker applies a tenant's waiting provider events in batches of this many, one transaction
# each (billing.inbox.drain), and at most WEBHOOK_DRAIN_MAX_EVENTS per task; 0: one event per task
WEBHOOK_DRAIN_BATCH = env_int("WEBHOOK_DRAIN_BATCH", 100)
WEBHOOK_DRAIN_MAX_EVENTS = env_int("WEBHOOK_DRAIN_MAX_EVENTS", 2000)
WEBHOOK_SWEEP_AFTER_SECONDS = env_int(
    "WEBHOOK_SWEEP_AFTER_SECONDS", 120
)  # prefix of new integrator keys: test|live
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 5 * 1024 * 1024)
# the entitlement check and key verification answered at the WSGI layer (monetize/hotpath.py); 0 sends
# them through Django's whole request cycle like every other call (same answers, more CPU)
API_FAST_LANE = env_str("API_FAST_LANE", "1") == "1"
# the Developers page's log of recent /api/v1/ calls (kernel/requestlog.py): entries per tenant kept,
# how often each process writes its buffer to Redis, and how many a process buffers at most
REQUEST_LOG_ENABLED = env_str("REQUEST_LOG_ENABLED", "1") == "1"
REQUEST_LOG_MAX = env_int("REQUEST_LOG_MAX", 500)
REQUEST_LOG_FLUSH_SECONDS = env_int("REQUEST_LOG_FLUSH_SECONDS", 1)
REQUEST_LOG_BUFFER_MAX = env_int("REQUEST_LOG_BUFFER_MAX", 5000)
API_KEY_ROTATION_GRACE_SECONDS = env_int("API_KEY_ROTATION_GRACE_SECONDS", 24 * 3600)
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 300)
IDEMPOTENCY_TTL_SECONDS = env_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600)
TENANT_CACHE_SECONDS = env_int("TENANT_CACHE_SECONDS", 10)
TENANT_SPARE_SCHEMAS = env_int("TENANT_SPARE_SCHEMAS", 2)
REDIS_BREAKER_SECONDS = env_int("REDIS_BREAKER_SECONDS", 5)
ENTITLEMENT_CACHE_SECONDS = env_int("ENTITLEMENT_CACHE_SECONDS", 300)
# the entitlement check's process-local copies of its Redis keys (kernel.localcache): Redis tells
# each process when one changes; this bounds a copy's age whatever happens. 0: every check reads Redis
LOCAL_CACHE_SECONDS = env_int("LOCAL_CACHE_SECONDS", 60)
LEASE_DEFAULT_TTL_SECONDS = env_int("LEASE_DEFAULT_TTL_SECONDS", 300)
LEASE_MAX_TTL_SECONDS = env_int("LEASE_MAX_TTL_SECONDS", 86400)

# --- apps -----------------------------------------------------------------------------------
# `accounts` (the custom User) and allauth sit in both lists: AUTH_USER_MODEL must have a table in
# the public schema for the operator's superusers and in every tenant schema for its own users.
_BOTH = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "accounts",
    "allauth",
    "allauth.account",
    "allauth.mfa",
]
SHARED_APPS = [
    "django_tenants",
    "tenants",
    *_BOTH,
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "pgtrigger",
    "kernel",
    "monetize",
]
TENANT_APPS = [
    *_BOTH,
    "billing.tiers",
    "billing.discounts",
    "billing.memberships",
    "billing.metering",
    "billing.entitlements",
    "billing.providers",
    "billing.events",
    "billing.inbox",
    "billing.invoicing",
    "billing.ledger",
    "billing.ledger.reconciliation",
    "billing.ledger.creators",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
TENANT_BASE_SCHEMA = env_str("TENANT_TEMPLATE_SCHEMA", "tenant_template")
TENANT_CREATION_FAKES_MIGRATIONS = True
# set the search path once per connection and tenant switch, not before every query (halves the
# statements of everything that touches PostgreSQL; every switch goes through connection.set_tenant)
TENANT_LIMIT_SET_CALLS = env_bool("TENANT_LIMIT_SET_CALLS", True)
PUBLIC_SCHEMA_URLCONF = "monetize.urls_public"
ROOT_URLCONF = "monetize.urls_tenant"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

MIDDLEWARE = [
    "monetize.middleware.HealthCheckMiddleware",
    "monetize.middleware.NulRejectMiddleware",
    "tenants.middleware.TenantMiddleware",
    "monetize.middleware.ApiRequestLogMiddleware",
    "monetize.middleware.ApiBodyLimitMiddleware",
    # the check and key verification leave the chain here (see ApiHotPathMiddleware: it still applies
    # Security and Common to them; what follows them only serves pages)
    "monetize.middleware.ApiHotPathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # the Pages* subclasses skip /api/v1/ and /webhooks/ (see monetize/middleware.py)
    "monetize.middleware.PagesWhiteNoiseMiddleware",
    "monetize.middleware.PagesSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "monetize.middleware.PagesAuthenticationMiddleware",
    "monetize.middleware.PagesMessageMiddleware",
    "monetize.middleware.PagesXFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

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
                "monetize.navigation.navigation",
                "tenants.branding.branding",
            ],
        },
    },
]
WSGI_APPLICATION = "monetize.wsgi.application"

# --- data stores ------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/monetize")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "monetize"),
        # keys carry the tenant's schema, so tenant A can never read tenant B's cached rows
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

# --- auth (allauth, email login) ----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Monetize"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGIN_URL = "/accounts/login/"
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Monetize <no-reply@monetize.localhost>")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.IntegratorKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasReadScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["kernel.api.jsonbody.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "kernel.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "kernel.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "kernel.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Monetize integrator API",
    "DESCRIPTION": (
        "Per-tenant REST API. Authenticate with `Authorization: Bearer mk_test_…`. Errors are "
        '`{"error": {"code", "message", "details"}}`; POSTs honour `Idempotency-Key`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # choice sets that share a field name get names of their own (else "Reason00fEnum")
    "ENUM_NAME_OVERRIDES": {
        "CreditNoteReasonEnum": [
            "duplicate",
            "fraudulent",
            "order_change",
            "product_unsatisfactory",
            "other",
        ],
        "CreditNoteStatusEnum": ["issued", "refund_pending", "refunded", "refund_failed"],
        "CheckReasonEnum": ["ok", "not_in_tier", "limit_reached", "rate_limited", "insufficient_credits"],
        "ReconciliationRunStatusEnum": "billing.ledger.reconciliation.models.RunStatus",
        "ReconciliationItemKindEnum": "billing.ledger.reconciliation.models.ItemKind",
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# a few messages in hand per process: with acks_late and 1, every task waits for a broker round trip
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every task unless this is
# set (two new connections per provider event, a quarter of its cost): reuse one for this many tasks.
# A broken connection is still dropped before the next task (monetize.celery: close_old_connections).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
# tenant-schemas-celery looks the tenant row up before every task; keep it in the process this long
CELERY_TASK_TENANT_CACHE_SECONDS = env_int("CELERY_TASK_TENANT_CACHE_SECONDS", 60)
# Three queues, a worker each (Procfile), so no kind of work waits behind another: provider webhooks
# in (`inbox`), deliveries to integrators' endpoints (`deliveries`, where one tenant's fan-out can be
# large) and everything else, beat jobs included (`housekeeping`, also the default queue).
CELERY_TASK_DEFAULT_QUEUE = "housekeeping"
CELERY_TASK_ROUTES = {
    "webhooks.process": {"queue": "inbox"},
    "webhooks.sweep": {"queue": "inbox"},
    "webhooks.deliver": {"queue": "deliveries"},
    "events.sweep": {"queue": "deliveries"},
}
# A frozen or unreachable broker must cost a request that publishes after commit seconds, not
# forever: bounded connect and socket timeouts (above the transport's 1 s BRPOP, so workers' polls are
# unaffected) and no publish retry (a retry reconnects and waits out the timeouts again: 6 s, not 2).
# redis-py itself replaces a pooled connection the broker closed. A publish that fails is logged and
# counted (kernel.enqueue); the beat sweepers (webhooks.sweep, events.sweep) re-enqueue its work.
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    "socket_timeout": env_float("CELERY_BROKER_SOCKET_TIMEOUT", 2.0),
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = CELERY_BROKER_CONNECTION_TIMEOUT
CELERY_REDIS_SOCKET_TIMEOUT = env_float("CELERY_BROKER_SOCKET_TIMEOUT", 2.0)
CELERY_BEAT_SCHEDULE_FILENAME = env_str(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / ".data" / "celerybeat-schedule")
)
# Entries without `tenant_schemas` are fanned out to every tenant by the tenant-aware scheduler.
CELERY_BEAT_SCHEDULE = {
    "idempotency-purge": {"task": "accounts.idempotency_purge", "schedule": 3600.0},
    "leases-purge": {"task": "entitlements.leases_purge", "schedule": 6 * 3600.0},
    "keys-last-used-flush": {"task": "accounts.keys_last_used_flush", "schedule": 60.0},
    # runs in the public schema only (tenant-schemas-celery: an explicit schema list)
    "webhooks-sweep": {"task": "webhooks.sweep", "schedule": 60.0},
    "events-sweep": {"task": "events.sweep", "schedule": 60.0},
    "checkouts-expire": {"task": "memberships.checkouts_expire", "schedule": 3600.0},
    "replaced-subscriptions-sweep": {"task": "memberships.replaced_sweep", "schedule": 3600.0},
    "engine-charge-due": {"task": "invoicing.engine_charge_due", "schedule": 3600.0},
    "credit-notes-sweep": {"task": "invoicing.credit_notes_sweep", "schedule": 3600.0},
    # every tenant; each UTC day recognized once (billing.ledger.recognition), re-runs post nothing
    "revenue-recognition": {"task": "ledger.recognition_daily", "schedule": 3600.0},
    "credits-expire": {"task": "metering.credits_expire", "schedule": 3600.0},
    "credits-allowances": {"task": "metering.credits_allowances", "schedule": 3600.0},
    "metering-partitions": {"task": "metering.partitions_ahead", "schedule": 86400.0},
    "metering-rollups-fold": {"task": "metering.rollups_fold", "schedule": 60.0},
    "meter-sync": {  # nightly at 02:00 UTC, every tenant (billing.metering.sync)
        "task": "metering.meter_sync",
        "schedule": __import__("celery.schedules", fromlist=["crontab"]).crontab(minute=0, hour=2),
    },
    "reconciliation-daily": {  # daily at 03:00 UTC, every tenant: yesterday's books (billing.ledger.reconciliation)
        "task": "reconciliation.daily",
        "schedule": __import__("celery.schedules", fromlist=["crontab"]).crontab(minute=0, hour=3),
    },
    "creator-earnings-release": {  # daily at 00:30 UTC, every tenant (billing.ledger.creators)
        "task": "creators.earnings_release",
        "schedule": __import__("celery.schedules", fromlist=["crontab"]).crontab(minute=30, hour=0),
    },
    "creator-payouts": {  # daily at 01:00 UTC, after the release: scheduled payouts, lost transfers
        "task": "creators.payouts_scheduled",
        "schedule": __import__("celery.schedules", fromlist=["crontab"]).crontab(minute=0, hour=1),
    },
    # cache invalidations Redis did not take (kernel.invalidations): seconds after it answers again
    "cache-invalidations-replay": {
        "task": "kernel.invalidations_replay",
        "schedule": 5.0,
        "tenant_schemas": ["public"],
    },
    "tenant-spares-refill": {
        "task": "tenants.spares_refill",
        "schedule": 300.0,
        "tenant_schemas": ["public"],
    },
}

# --- i18n, static -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# front-end libraries from npm (package.json; `make install` runs `npm ci`): only the files listed in
# kernel/assets.py, served at /static/vendor/<package path> (never a CDN, never committed)
NODE_MODULES_DIR = BASE_DIR / "node_modules"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "kernel.assets.VendorFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# static files are served from the app folders through the finders until `collectstatic` has run
warnings.filterwarnings("ignore", message="No directory at")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
