"""Model fields whose values are encrypted in the database (core/crypto.py) and plain in Python.

Every reader (the bridge, the health check, webhook signing) gets the plaintext without knowing; only
the rows are ciphertext. The columns keep the plain field's type (varchar, JSON). Lookups on encrypted
values cannot match (each encryption differs), so nothing filters on them. `manage.py
rotate_encryption_key` finds every field of these classes. `dumpdata` writes the ciphertext (a fixture
holds no secret in clear) and `loaddata` reads it back with any configured key."""

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from core import crypto


def _opened(value):
    """A serialized value back in clear: a `fernet:` token some key opens, else the value as it is (a
    plain secret that happens to start with the prefix)."""
    if not crypto.is_encrypted(value):
        return value
    try:
        return crypto.decrypt(value)
    except ImproperlyConfigured:
        return value


class EncryptedCharField(models.CharField):
    """A string stored as `fernet:<token>`: max_length must leave room for it (about 1.4 x + 80 chars)."""

    def from_db_value(self, value, expression, connection):
        return crypto.decrypt(value) if isinstance(value, str) else value

    def to_python(self, value):
        return _opened(super().to_python(value))

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))

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

    def to_python(self, value):
        return self._secrets_mapped(super().to_python(value), _opened)

    def value_to_string(self, obj):
        return self._secrets_mapped(self.value_from_object(obj), crypto.encrypt)
