"""Model fields whose values are encrypted in the database (core/crypto.py) and plain in Python.

Every reader (the bridge, the health check, webhook signing) gets the plaintext without knowing; only
the rows are ciphertext. The columns keep the plain field's type (varchar, JSON). Lookups on encrypted
values cannot match (each encryption differs), so nothing filters on them. `manage.py
rotate_encryption_key` finds every field of these classes."""

from django.db import models

from core import crypto


class EncryptedCharField(models.CharField):
    """A string stored as `fernet:<token>`: max_length must leave room for it (about 1.4 x + 80 chars)."""

    def from_db_value(self, value, expression, connection):
        return crypto.decrypt(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return crypto.encrypt(value) if isinstance(value, str) and value else value


class EncryptedSecretsJSONField(models.JSONField):
    """A JSON object whose values under `secret_keys` are encrypted and the others kept readable (an
    agent's auth_config: its token or key encrypted, its header name not)."""

    def __init__(self, *args, secret_keys=(), **kwargs):
        self.secret_keys = frozenset(secret_keys)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["secret_keys"] = sorted(self.secret_keys)
        return name, path, args, kwargs

    def _secrets_mapped(self, value, convert):
        if not isinstance(value, dict):
            return value
        return {
            key: (convert(item) if key in self.secret_keys and isinstance(item, str) and item else item)
            for key, item in value.items()
        }

    def from_db_value(self, value, expression, connection):
        return self._secrets_mapped(super().from_db_value(value, expression, connection), crypto.decrypt)

    def get_prep_value(self, value):
        return self._secrets_mapped(super().get_prep_value(value), crypto.encrypt)
