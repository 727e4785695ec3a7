"""Who a tokenless master's caller is, read from its Host and Origin headers: pure parsing,
no sockets.

Without api_tokens the API listens on loopback only and trusts what reaches it, so a web
page must not pass for such a caller. Two checks, each an exact parse rather than a test
of how a string starts or ends (``127.0.0.1.evil.test`` starts like a loopback address):

* the Host names loopback -- ``localhost`` or an address ``ipaddress`` calls loopback
  (``127.0.0.0/8``, ``::1``, an IPv4-mapped ``::ffff:127.x``), with an optional port --
  so a DNS-rebinding page, whose requests carry its own host name, is refused;
* a state-changing request's Origin, when sent, is the request's own origin: the same
  scheme, host and port as the URL the browser sent it to (its Host). A page from another
  name or another local port (a dev server on :3000) is another origin, while the
  dashboard, served by the master itself, is the same origin on any port it is reached
  by (an ``ssh -L`` tunnel's too).
"""

import ipaddress
import re
from typing import NamedTuple, Optional

LOOPBACK_NAME = "localhost"
DEFAULT_PORTS = {"http": 80, "https": 443}
# A bracketed IPv6 literal, or a name or IPv4 address; then an optional decimal port.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::([0-9]{1,5}))?")
_ORIGIN = re.compile(r"([a-z][a-z0-9+.-]*)://(.+)")


class HostPort(NamedTuple):
    name: str               # lowercased; an IPv6 address without its brackets
    port: Optional[int]     # None when the header names no port


def parse_host(text: str) -> Optional[HostPort]:
    """A Host header's (or an origin's) ``host[:port]``, or None when it is not one."""
    if not text.isascii():      # "\u212a".lower() is "k": lowercase only what is ASCII already
        return None
    match = _HOST.fullmatch(text.strip().lower())
    if match is None:
        return None
    name, port = match.group(1), match.group(2)
    if port is not None and not 0 < int(port) < 65536:
        return None
    if name.startswith("["):
        name = name[1:-1]
        if not _is_ipv6(name):
            return None
    return HostPort(name, int(port) if port is not None else None)


def is_loopback_name(name: str) -> bool:
    """Whether a host name or address (no port, no brackets) is this machine's loopback."""
    if not name.isascii():
        return False
    name = name.strip().lower()
    if name == LOOPBACK_NAME:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def is_loopback_host(host: str) -> bool:
    """Whether a Host header's ``host[:port]``, or a configured address (``::1`` bare
    too), names this machine's loopback."""
    if is_loopback_name(host):
        return True
    parsed = parse_host(host)
    return parsed is not None and is_loopback_name(parsed.name)


class Origin(NamedTuple):
    scheme: str
    name: str
    port: int


def parse_origin(text: str) -> Optional[Origin]:
    """An Origin header's ``scheme://host[:port]`` (no path, no user), or None (``null`` too)."""
    match = _ORIGIN.fullmatch(text.strip().lower()) if text.isascii() else None
    if match is None or match.group(1) not in DEFAULT_PORTS:
        return None
    host = parse_host(match.group(2))
    if host is None:
        return None
    return Origin(match.group(1), host.name, _port(match.group(1), host))


def request_origin(scheme: str, host: str) -> Optional[Origin]:
    """The origin a request was sent to: its scheme and its Host header."""
    parsed = parse_host(host)
    if parsed is None or scheme not in DEFAULT_PORTS:
        return None
    return Origin(scheme, parsed.name, _port(scheme, parsed))


def is_same_origin(origin: str, scheme: str, host: str) -> bool:
    """Whether an Origin header names exactly the origin the request was sent to."""
    theirs, ours = parse_origin(origin), request_origin(scheme, host)
    return theirs is not None and ours is not None and _canonical(theirs) == _canonical(ours)


def _port(scheme, host):
    return host.port if host.port is not None else DEFAULT_PORTS[scheme]


def _canonical(origin):
    """One spelling per address (``[::1]`` and ``[0:0::1]`` are one host)."""
    try:
        return origin._replace(name=str(ipaddress.ip_address(origin.name)))
    except ValueError:
        return origin


def _is_ipv6(text):
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False
