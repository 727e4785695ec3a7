"""One notification attempt: resolve the host once, check the address, connect to that
address, POST, read a little of the answer.

The master is not monkey-patched, so this uses gevent's sockets, resolver and ssl under
the standard library's http.client. The address checked (``notify_allow``) is the one
connected to: the name is resolved once, here, and the connection is pinned to the
chosen address -- a second lookup (what a DNS-rebinding attacker counts on) never
happens -- while the Host header and the TLS server name (SNI, and the certificate
check) stay the URL's name. A redirect is followed only when ``redirects`` allows it,
only a 307 or 308 (they keep the method and body), and its target is parsed and checked
exactly as the first URL was.

Bounds: CONNECT_SECONDS to connect; the caller bounds the whole attempt; at most
MAX_RESPONSE_BYTES of the answer's body is read (http.client bounds its headers).
"""

import http.client
import ipaddress
import urllib.parse

import gevent.socket
import gevent.ssl

from .notify_allow import address_refusal, parse_url

CONNECT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 4096
MAX_ADDRESSES = 16
REDIRECTS_KEPT = (307, 308)


class AttemptFailed(Exception):
    """The attempt did not reach a receiver's answer; the message says why."""


def resolve(host, port):
    """The addresses a name resolves to (gevent's resolver: the hub keeps serving)."""
    try:
        found = gevent.socket.getaddrinfo(host, port, 0, gevent.socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AttemptFailed("cannot resolve %s: %s" % (host, exc))
    addresses = []
    for info in found[:MAX_ADDRESSES]:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def pick_address(url, allow, resolver=resolve):
    """The first address of ``url``'s host that ``allow`` permits; AttemptFailed with the first
    refusal if none does."""
    candidates = [url.address] if url.address is not None else resolver(url.host, url.port)
    refusals = []
    for address in candidates:
        refusal = address_refusal(url, address, allow)
        if refusal is None:
            return address
        refusals.append(refusal)
    raise AttemptFailed("refused: %s" % (refusals[0] if refusals else "%s resolves to no address" % url.host))


class _PinnedConnection(http.client.HTTPConnection):
    """http.client to a fixed address; ``host`` (the name) is what the Host header says."""

    def __init__(self, host, port, address, timeout, tls_context=None):
        super().__init__(host, port, timeout=timeout)
        self.address, self.tls_context = address, tls_context

    def connect(self):
        sock = gevent.socket.create_connection((str(self.address), self.port), CONNECT_SECONDS)
        sock.settimeout(self.timeout)
        if self.tls_context is not None:
            sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def tls_context(ca_file=None):
    """The system's CAs, or only those in ``ca_file`` (notify_tls_ca), the name checked
    (loading them takes milliseconds: made once)."""
    return gevent.ssl.create_default_context(cafile=ca_file)


def post_once(url, address, body, headers, timeout, context):
    """(status, Location) of one POST to ``address`` for ``url``."""
    connection = _PinnedConnection(url.host, url.port, address, timeout,
                                   context if url.scheme == "https" else None)
    try:
        connection.request("POST", url.target, body, headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status, response.getheader("Location")
    finally:
        connection.close()


def post(url, body, headers, allow, timeout, redirects=0, resolver=resolve, context=None):
    """The receiver's status for one POST of ``body`` to ``url`` (a NotifyUrl), every hop's
    address checked against ``allow``; AttemptFailed when no answer was had."""
    for hop in range(redirects + 1):
        if url.scheme == "https" and context is None:
            context = tls_context()
        address = pick_address(url, allow, resolver)
        try:
            status, location = post_once(url, address, body, headers, timeout, context)
        except (OSError, http.client.HTTPException) as exc:
            raise AttemptFailed("%s (%s): %s" % (url.host, address, str(exc) or type(exc).__name__))
        if status in REDIRECTS_KEPT and location and hop < redirects:
            try:
                url = parse_url(urllib.parse.urljoin(url.text, location))
            except ValueError as exc:
                raise AttemptFailed("redirected to a refused URL: %s" % exc)
            continue
        return status
    return status
