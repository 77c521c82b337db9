"""Settings of the /docs (Swagger UI) and /redoc pages: both work offline and load nothing from another
host (their assets come from drf-spectacular-sidecar; tests/core/test_no_third_party.py checks)."""

SYSTEM_FONTS = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
MONOSPACE_FONTS = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace'

# validatorUrl: off, or Swagger UI may show a badge image fetched from validator.swagger.io, sending it
# the schema's URL.
SWAGGER_UI_SETTINGS = {"deepLinking": True, "validatorUrl": None}
# The system's fonts instead of the Montserrat and Roboto that ReDoc's page fetches from Google Fonts.
REDOC_UI_SETTINGS = {
    "theme": {
        "typography": {
            "fontFamily": SYSTEM_FONTS,
            "headings": {"fontFamily": SYSTEM_FONTS},
            "code": {"fontFamily": MONOSPACE_FONTS},
        }
    }
}
