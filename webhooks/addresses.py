"""Where webhook requests may go: not into the platform's own network, unless a setting allows it.

Webhook URLs come from users, so without a guard the server could be made to call its own admin
ports, a cloud metadata address or any service of the private network (SSRF). A URL is checked when
it is saved, and again on every connection a delivery opens (webhooks/sender.py): that check resolves
the name and the connection then goes to the very address that was checked, so a name that changes its
answer between the two (DNS rebinding) gains nothing.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeAddress(Exception):
    """The host resolves to an address webhooks may not reach."""


def address_refused(address: str) -> str | None:
    """Why an IP address is off limits, or None."""
    ip = ipaddress.ip_address(address.split("%")[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    # Most specific first: Python counts link-local, reserved and the rest as private too.
    for reason in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{reason}"):
            return reason.replace("_", "-")
    if not ip.is_global:  # shared address space (100.64/10) and the like
        return "not globally reachable"
    return None


def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name (or IP literal) stands for; socket.gaierror when it does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def allowed_addresses(host: str, port: int) -> list[str]:
    """The host's addresses, all of them allowed; UnsafeAddress when any is not (a name with one
    private address among public ones is refused: which one a connection gets is not ours to choose)."""
    addresses = resolve(host, port)
    for address in addresses:
        reason = address_refused(address)
        if reason:
            raise UnsafeAddress(
                f"{host} resolves to {address} ({reason}); webhooks may not call it "
                "(WEBHOOK_ALLOW_PRIVATE_URLS is off)."
            )
    return addresses


def url_problem(url: str) -> str | None:
    """Why a webhook URL is refused, or None. For saving: the scheme, then the addresses (unless allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Must be an http or https URL."
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        allowed_addresses(parts.hostname, port)
    except ValueError:
        return "The port is not valid."
    except UnicodeError:
        return "The host name is not valid."
    except socket.gaierror as exc:
        return f"The host {parts.hostname!r} does not resolve ({exc.strerror or exc})."
    except UnsafeAddress as exc:
        return str(exc)
    return None
