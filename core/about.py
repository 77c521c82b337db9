"""The platform's name and version, as the landing page and the API root show them."""

import tomllib
from functools import cache

from django.conf import settings

PLATFORM_NAME = "Workflow platform"


@cache
def platform_version() -> str:
    """The version in pyproject.toml (the project is not installed as a package, so no metadata)."""
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as handle:
            return tomllib.load(handle)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"
