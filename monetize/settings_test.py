"""Test settings: the real PostgreSQL and Redis, isolated by Redis database and key prefix."""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from monetize.settings import *  # noqa: E402,F403
from monetize.settings import CACHES, REDIS_URL  # noqa: E402

# separate Redis databases for tests, so a running dev stack and a test run never share keys, and
# tests may flush the cache database without touching the broker's queues and bindings
_REDIS_BASE = REDIS_URL.rsplit("/", 1)[0]
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or f"{_REDIS_BASE}/15"
CACHES["default"]["LOCATION"] = TEST_REDIS_URL
CACHES["default"]["KEY_PREFIX"] = "monetize-test"
CELERY_BROKER_URL = os.environ.get("TEST_BROKER_URL") or f"{_REDIS_BASE}/14"
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEBUG = False
TENANT_SPARE_SCHEMAS = 0  # tests fill the spare pool explicitly (tests/tenants/test_provisioning.py)
# tests flush the request log explicitly (kernel.requestlog.request_log_flush); the background
# writer would race their assertions
REQUEST_LOG_FLUSH_SECONDS = 3600
