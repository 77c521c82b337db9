"""The development secret key: random, made once per data directory and kept there.

A constant would be public (it is in the source), and anyone could forge sessions and JWTs with it; a
new key at each start would log everyone out and break tokens between processes. So, as `./dev up`
does, the first process to start writes DATA_DIR/secret_key (readable by its owner only) and every
later one reads it.
"""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def development_secret_key(data_dir: Path) -> str:
    return kept_key(data_dir / "secret_key", lambda: secrets.token_urlsafe(50))


def kept_key(path: Path, make) -> str:
    """The key stored at `path`; made by `make()` and written there (0600) by the first process that
    asks. Also used for the development encryption key (config/encryption_key.py)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under another name, then linked into place: processes starting together (./dev
        # up starts several) never read a half-written file, and the first link wins.
        temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(make() + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty: delete it to have a new development key made")
    return key
