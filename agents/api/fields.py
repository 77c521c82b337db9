"""The agent URL field. Django's URLValidator wants a dotted host name (or `localhost`), but agents are
often reached by a single-label name on their own network (`http://research-agent:8081`, a Compose
service, as in the older system's agents.yaml, whose API accepted them); those are valid here too."""

import re

from django.core.validators import URLValidator
from rest_framework import serializers


class AgentURLValidator(URLValidator):
    host_re = "(" + URLValidator.hostname_re + URLValidator.domain_re + "(?:" + URLValidator.tld_re + ")?|localhost)"
    regex = re.compile(
        r"^(?:[a-z0-9.+-]*)://"  # the scheme is checked on its own (`schemes`)
        r"(?:[^\s:@/]+(?::[^\s:@/]*)?@)?"  # user:password
        r"(?:" + URLValidator.ipv4_re + "|" + URLValidator.ipv6_re + "|" + host_re + ")"
        r"(?::[0-9]{1,5})?"  # port
        r"(?:[/?#][^\s]*)?"  # path, query, fragment
        r"\Z",
        re.IGNORECASE,
    )


class AgentURLField(serializers.URLField):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, URLValidator)]
        self.validators.append(AgentURLValidator(message=self.error_messages["invalid"]))
