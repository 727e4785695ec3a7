"""Where the master may send notifications (the SSRF guard), pure: the config's
``notify_allow``, a notification URL's strict parse, and the check of each address a
URL's host resolved to.

A webhook URL makes the master send a request inside its network, so the check is made
on the address it will connect to, not on the name:

* An entry ``https://hooks.example/services`` (a URL prefix) allows URLs whose scheme,
  host and port are equal to its own and whose path starts with its path *segments*
  (``/services/x`` does, ``/services-evil`` does not): the parsed parts are compared,
  never the strings. Its host may resolve to any address but the special ones below.
* An entry ``10.0.5.0/24`` (a network, or one address) allows any http(s) URL whose host
  is, or resolves to, an address in it -- special ones included: the one way to allow
  loopback (``127.0.0.0/8``) or link-local addresses is to name them.
* Special addresses, refused unless a network entry holds them: loopback, link-local
  (169.254.0.0/16 with the cloud metadata address, fe80::/10), unspecified and 0.0.0.0/8,
  multicast, reserved (240.0.0.0/4, broadcast), IPv6 site-local, IPv4-compatible and
  NAT64 forms. An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is checked as the IPv4
  address it is.

A URL is refused outright when it could mean two things: user info (``a@b``), a host
that is not a plain DNS name or a canonical address (``2130706433``, ``0177.0.0.1``,
``0x7f.1``, a zone id), a backslash, an encoded or dot path segment, a fragment.
"""

import ipaddress
import re
import urllib.parse
from typing import NamedTuple, Optional, Tuple

MAX_URL_CHARS = 2048
MAX_ENTRIES = 256
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# A label a resolver may read as a number (inet_aton takes octal, hex and fewer than four parts).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_ENCODED_SEPARATORS = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefused(ValueError):
    """The URL is malformed or not allowed; the message says which part and why."""


class NotifyUrl(NamedTuple):
    text: str                   # as given
    scheme: str                 # http or https
    host: str                   # a lowercase DNS name, or an address as text (IPv6 without brackets)
    port: int                   # explicit or the scheme's
    segments: Tuple[str, ...]   # the path's segments, a trailing empty one dropped
    target: str                 # what goes on the request line: path and query
    address: Optional[object]   # the host as an ipaddress object, when it is an address


class AllowList(NamedTuple):
    prefixes: Tuple[NotifyUrl, ...] = ()
    networks: Tuple[object, ...] = ()

    def __bool__(self):
        return bool(self.prefixes or self.networks)

    def describe(self):
        return "%d URL prefix(es), %d network(s)" % (len(self.prefixes), len(self.networks))


class CurrentAllowList:
    """``notify_allow`` as it is now: read at start, replaced by a SIGHUP reload
    (service.reload_notify_allow). Every check reads ``current`` when it is made, so an
    entry dropped from the config is refused from then on, for notifications already in
    the outbox too."""

    def __init__(self, allow: Optional[AllowList] = None):
        self.current = allow or AllowList()


def parse_url(text) -> NotifyUrl:
    if not isinstance(text, str) or not text:
        raise UrlRefused("expected an http:// or https:// URL")
    if len(text) > MAX_URL_CHARS:
        raise UrlRefused("a URL of at most %d characters" % MAX_URL_CHARS)
    if not all("!" <= char <= "~" for char in text) or "\\" in text:
        raise UrlRefused("only printable ASCII without spaces or backslashes (percent-encode the rest)")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("not a URL: %s" % exc)
    if parts.scheme not in DEFAULT_PORTS:
        raise UrlRefused("the scheme must be http or https, got %r" % parts.scheme)
    if "@" in parts.netloc:
        raise UrlRefused("user info (user@host) is not allowed in a notify URL")
    if parts.fragment or text.endswith("#"):
        raise UrlRefused("a fragment (#...) is not sent; leave it out")
    if port == 0:
        raise UrlRefused("port 0 is not a port")
    host, address = _host(parts)
    path = parts.path or "/"
    if _ENCODED_SEPARATORS.search(path):
        raise UrlRefused("the path may not hold an encoded '.', '/', '\\' or NUL")
    segments = path.split("/")[1:]
    if any(segment in (".", "..") for segment in segments):
        raise UrlRefused("the path may not hold '.' or '..' segments")
    if segments and segments[-1] == "":
        segments.pop()
    return NotifyUrl(text, parts.scheme, host, port or DEFAULT_PORTS[parts.scheme], tuple(segments),
                     path + ("?" + parts.query if parts.query else ""), address)


def _host(parts):
    """(host, address or None): a DNS name or an address written the one canonical way."""
    host = parts.hostname
    if not host:
        raise UrlRefused("the URL has no host")
    if parts.netloc.startswith("["):        # user info is refused before: the netloc starts with the host
        if "%" in host:
            raise UrlRefused("an IPv6 zone id (%...) is not allowed")
        try:
            return host, ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlRefused("%r is not an IPv6 address" % host)
    labels = host.split(".")
    if all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            address = None
        if address is None or str(address) != host:
            raise UrlRefused("%r is an address in a form resolvers read differently; write it as four decimal "
                             "numbers (127.0.0.1)" % host)
        return host, address
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels) or not labels[-1][0].isalpha():
        raise UrlRefused("%r is not a DNS name (letters, digits and '-' in dot-separated labels, the last "
                         "starting with a letter)" % host)
    return host, None


def allow_list(value) -> AllowList:
    """The config's ``notify_allow`` (a ValueError names the bad entry)."""
    if value is None:
        return AllowList()
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise ValueError("expected a list (at most %d) of URL prefixes (https://hooks.example/path) and networks "
                         "(10.0.5.0/24)" % MAX_ENTRIES)
    prefixes, networks = [], []
    for entry in value:
        if not isinstance(entry, str):
            raise ValueError("%r is neither a URL prefix nor a network" % (entry,))
        if "://" in entry:
            try:
                parsed = parse_url(entry)
            except UrlRefused as exc:
                raise ValueError("%r: %s" % (entry, exc))
            if "?" in entry:
                raise ValueError("%r: a URL prefix has no query" % entry)
            prefixes.append(parsed)
        else:
            try:
                networks.append(ipaddress.ip_network(entry, strict=True))
            except ValueError as exc:
                raise ValueError("%r is neither a URL prefix (https://...) nor a network: %s" % (entry, exc))
    return AllowList(tuple(prefixes), tuple(networks))


def plain(address):
    """An IPv4-mapped IPv6 address as the IPv4 address it stands for."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def special_kind(address) -> Optional[str]:
    """Why an address is never a notification's destination unless a network entry names it, or None."""
    address = plain(address)
    checks = (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
              ("link-local", address.is_link_local), ("multicast", address.is_multicast),
              ("reserved", address.is_reserved))
    for kind, hit in checks:
        if hit:
            return kind
    if address.version == 4 and address in _THIS_NETWORK:
        return "this-network (0.0.0.0/8)"
    if address.version == 6 and (address.is_site_local or address in _IPV4_COMPATIBLE or address in _NAT64):
        return "site-local, IPv4-compatible or NAT64"
    return None


def _in_networks(address, networks):
    return any(address.version == network.version and address in network for network in networks)


def prefix_matches(entry: NotifyUrl, url: NotifyUrl) -> bool:
    return (entry.scheme == url.scheme and entry.host == url.host and entry.port == url.port
            and url.segments[:len(entry.segments)] == entry.segments)


def refusal_at_submit(url: NotifyUrl, allow: AllowList) -> Optional[str]:
    """Why a URL is refused before anything is resolved, or None (its addresses are checked
    again, each, when it is sent)."""
    if not allow:
        return "this master's notify_allow is empty, so it sends no notifications (docs/configuration.md)"
    if url.address is not None:
        return address_refusal(url, url.address, allow)
    if any(prefix_matches(entry, url) for entry in allow.prefixes) or allow.networks:
        return None
    return "%s matches no URL prefix in notify_allow" % url.text


def address_refusal(url: NotifyUrl, address, allow: AllowList) -> Optional[str]:
    """Why the master may not connect to ``address`` (what ``url``'s host resolved to), or None."""
    address = plain(address)
    if _in_networks(address, allow.networks):
        return None
    kind = special_kind(address)
    if kind is not None:
        where = url.host if url.address is not None else "%s resolves to %s, which" % (url.host, address)
        return "%s is a %s address that no network in notify_allow names" % (where, kind)
    if any(prefix_matches(entry, url) for entry in allow.prefixes):
        return None
    return "%s (%s) is in no network of notify_allow and matches no URL prefix there" % (url.host, address)
