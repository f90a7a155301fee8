"""Test settings: the real PostgreSQL and Redis, isolated by Redis database and key prefix."""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from monetize.settings import *  # noqa: E402,F403
from monetize.settings import CACHES, REDIS_URL  # noqa: E402

# a separate Redis database for tests, so a running dev stack and a test run never share keys
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or REDIS_URL.rsplit("/", 1)[0] + "/15"
CACHES["default"]["LOCATION"] = TEST_REDIS_URL
CACHES["default"]["KEY_PREFIX"] = "monetize-test"
CELERY_BROKER_URL = TEST_REDIS_URL
CELERY_RESULT_BACKEND = TEST_REDIS_URL
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEBUG = False
