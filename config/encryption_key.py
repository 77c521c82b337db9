"""FIELD_ENCRYPTION_KEY: the Fernet keys that encrypt secrets at rest (core/crypto.py).

A comma-separated list: the first key encrypts, every key decrypts, so a key is replaced by putting the
new one first, running `manage.py rotate_encryption_key`, then removing the old one. Development
(DEBUG=1) without one gets a random key made once per data directory and kept there (0600), as
config/secret_key.py does for SECRET_KEY: a new key at each start would make the stored secrets
unreadable.
"""

import base64
import binascii
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.secret_key import kept_key

NAME = "FIELD_ENCRYPTION_KEY"
HOW = 'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def encryption_keys(value: str | None, source: str = NAME) -> list[str]:
    """The keys of a comma-separated value, each checked to be a Fernet key (32 url-safe base64 bytes)."""
    keys = [key.strip() for key in (value or "").split(",") if key.strip()]
    for number, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
        except (binascii.Error, ValueError, UnicodeEncodeError):
            valid = False
        if not valid:
            raise ImproperlyConfigured(f"{source}: key {number} of {len(keys)} is not a Fernet key; {HOW}")
    return keys


def development_encryption_keys(data_dir: Path) -> list[str]:
    path = data_dir / "field_encryption_key"
    key = kept_key(path, lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    return encryption_keys(key, source=str(path))
