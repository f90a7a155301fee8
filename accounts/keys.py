"""Secrets: generating integrator keys and hashing them.

A key is `mk_<mode>_` + 40 base62 characters (about 238 bits). It is stored as its SHA-256 hex
digest: the secret has far more entropy than a password, so a fast unsalted hash is what the check
needs and cannot be brute-forced. `prefix` (the first 12 characters) is kept to recognise a key.
"""

import hashlib
import re
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 40
PREFIX_LENGTH = 12
KEY_RE = re.compile(r"^mk_(test|live)_[A-Za-z0-9]{40}$")


def key_generate(*, mode: str) -> str:
    return f"mk_{mode}_" + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_prefix(raw: str) -> str:
    return raw[:PREFIX_LENGTH]


def key_looks_valid(raw: str) -> bool:
    return bool(KEY_RE.match(raw))
