"""Encryption of secrets at rest (provider credentials, webhook secrets): Fernet (AES-128-CBC +
HMAC-SHA256) with keys from MONETIZE_ENCRYPTION_KEYS (comma-separated, newest first, so keys can
be rotated: old ciphertexts still decrypt). Without it, a key is derived from SECRET_KEY; set a
real one in production."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.MONETIZE_ENCRYPTION_KEYS if k.strip()]
    if not keys:
        derived = hashlib.sha256(("monetize-encryption:" + settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
