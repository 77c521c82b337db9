"""The API's JSON renderer (core/api/renderers.py) writes exactly the bytes DRF's own renderer writes."""

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.utils.functional import lazy
from rest_framework import renderers

from core.api.renderers import JSONRenderer
from runs.choices import RunStatus

VALUES = [
    {"id": uuid.UUID("12345678-1234-5678-1234-567812345678"), "n": 1, "f": 1.5, "none": None, "t": True},
    {"at": datetime(2026, 12, 3, 8, 0, 1, 123456, tzinfo=UTC), "day": date(2026, 12, 3)},
    {"local": datetime(2026, 12, 3, 8, 0, tzinfo=timezone(timedelta(hours=2))), "naive": datetime(2026, 1, 1)},
    {"price": Decimal("10.50"), "lazy": lazy(lambda: "läzy", str)(), "set": {1}, "tuple": (1, "a")},
    {"text": 'é ü 日本 \U0001f600 " \\ \n \t \x01', "sep": "a\u2028b\u2029c", "status": RunStatus.RUNNING},
    {1: "int key", "nested": [{"a": [[], {}, ""]}] * 3, "neg": -(2**63), "big": 2**63 - 1},
    {"huge": 2**70, "list": [2**80]},  # beyond 64 bits: DRF's renderer writes it
    [],
    "plain",
]


@pytest.mark.parametrize("value", VALUES)
def test_the_bytes_are_drfs(value):
    assert JSONRenderer().render(value) == renderers.JSONRenderer().render(value)


def test_indented_and_empty_are_drfs_too():
    value = {"a": [1, {"b": "c"}]}
    for media_type in ("application/json; indent=4", "application/json; indent=0", "application/json"):
        assert JSONRenderer().render(value, media_type) == renderers.JSONRenderer().render(value, media_type)
    context = {"indent": 2}  # the browsable API's
    assert JSONRenderer().render(value, None, context) == renderers.JSONRenderer().render(value, None, context)
    assert JSONRenderer().render(None) == b""


def test_nan_is_null_instead_of_a_failed_response():
    assert JSONRenderer().render({"x": float("nan"), "y": float("inf")}) == b'{"x":null,"y":null}'
    with pytest.raises(ValueError):
        renderers.JSONRenderer().render({"x": float("nan")})


def test_every_endpoint_renders_with_it():
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_RENDERER_CLASSES[0] is JSONRenderer
