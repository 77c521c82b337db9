"""`?fields=a,b`: list items trimmed to the fields a client asks for (smaller pages, less to render)."""

from core.api.exceptions import UnprocessableEntity

FIELDS_PARAM = "fields"


def fields_requested(request, allowed) -> list[str] | None:
    """The fields asked for, in the order given, or None when the parameter is absent.

    Accepts `fields=a,b` and `fields=a&fields=b`; an unknown or empty selection is a 422."""
    given = request.query_params.getlist(FIELDS_PARAM)
    if not given:
        return None
    names = list(dict.fromkeys(part.strip() for item in given for part in item.split(",") if part.strip()))
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        what = f"Unknown field {unknown[0]!r}." if unknown else "Name at least one field."
        raise UnprocessableEntity({FIELDS_PARAM: [f"{what} Allowed: {', '.join(allowed)}."]})
    return names


def trimmed(items: list[dict], names: list[str] | None) -> list[dict]:
    if names is None:
        return items
    return [{name: item[name] for name in names} for item in items]
