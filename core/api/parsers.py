"""The one request body parser: JSON, without the NUL character in any string or key.

PostgreSQL stores neither a NUL in text nor a `\\u0000` in jsonb: such a body would fail at the INSERT
as a 500 (found by tests/api_fuzz). It is refused here, as a malformed body (422), on every database
alike. Text fields already refuse it (DRF's CharField); this covers what is kept as JSON (run input,
workflow definitions, agent metadata, step answers)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

NUL = "\x00"


def has_nul(data) -> bool:
    # A loop, not recursion: a body nested as deep as the JSON parser allows must not overflow here.
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if NUL in value:
                return True
        elif isinstance(value, dict):
            if any(NUL in key for key in value):
                return True
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if has_nul(data):
            raise ParseError("Strings cannot contain the NUL character (\\u0000).")
        return data
