"""Reading an admin page's form as a browser would submit it, so tests change one value and post the rest
back as shown (inline formsets' management forms included)."""

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    def __init__(self, form_id: str | None):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = self.done = False
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._option: str | None = None
        self._option_selected = False
        self._option_has_value = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def _add(self, name: str, value: str) -> None:
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self.done and self.form_id in (None, attrs.get("id")):
            self.inside = True
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._add(name, attrs.get("value") or "on")
                return
            self._add(name, attrs.get("value") or "")
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select:
            self._option = attrs.get("value", "")
            self._option_has_value = "value" in attrs  # a browser sends value="" as "", not the text
            self._option_selected = "selected" in attrs
            self._text = []
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data):
        if self._textarea is not None or self._option is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside, self.done = False, True
        elif tag == "option" and self._option is not None:
            if self._option_selected:
                self._add(self._select, self._option if self._option_has_value else "".join(self._text).strip())
            self._option = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # The browser drops the one newline Django puts after <textarea>.
            self._add(self._textarea, "".join(self._text).removeprefix("\n"))
            self._textarea = None


def form_data(html: str, form_id: str | None = None) -> dict[str, list[str]]:
    """{name: [values]} of the form `form_id` (the first form when None), as a browser would post it."""
    reader = _FormReader(form_id)
    reader.feed(html)
    return reader.data
