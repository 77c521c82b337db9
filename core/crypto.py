"""Secrets at rest: agent tokens and keys, webhook signing secrets, encrypted with Fernet.

The keys are settings.FIELD_ENCRYPTION_KEY (config/encryption_key.py): MultiFernet encrypts with the
first and decrypts with any, so keys rotate without downtime (`manage.py rotate_encryption_key`
re-encrypts everything with the first, after which the older keys can go).

A stored value is `fernet:<token>`. A value without the prefix is taken as plaintext: one stored before
encryption came in, or written by the previous release during a rolling deploy; it reads as itself and
is encrypted at its next write (or by the rotation command). With the prefix it must decrypt: a value no
configured key opens is an error, never passed on as if it were the secret.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY is not set: secrets (agent tokens and keys, webhook secrets) cannot be "
            "encrypted or decrypted. See the configuration table in README.md."
        )
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEY))


def is_encrypted(value) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(plaintext: str) -> str:
    return PREFIX + _current().encrypt(plaintext.encode()).decode("ascii")


def decrypt(stored: str) -> str:
    if not is_encrypted(stored):
        return stored
    return _opened(tuple(settings.FIELD_ENCRYPTION_KEY), stored)


# Every read of an agent decrypts its secrets (an agents page: 14 tokens, 0.3 ms of CPU). A token's
# plaintext never changes, so each process keeps the last ones it opened, under the keys that opened
# them. They are the secrets the process reads anyway (the bridge sends them with every call).
@lru_cache(maxsize=2048)
def _opened(keys: tuple[str, ...], stored: str) -> str:
    try:
        return _fernet(keys).decrypt(stored.removeprefix(PREFIX).encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with any key of FIELD_ENCRYPTION_KEY: the key that "
            "encrypted it is missing (keep old keys after the new one until rotate_encryption_key has run)."
        ) from None
