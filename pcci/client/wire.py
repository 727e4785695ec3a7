"""HTTP/1.1 on a plain socket, for the client's calls: one request per connection, ssl
imported only for https, so the pcci command starts without http.client, email and
urllib (about 20 ms of imports, more than the round trip it makes).

    request   METHOD TARGET HTTP/1.1 CRLF  Host, Connection: close, Content-Length, ... CRLF CRLF  body
    answer    HTTP/1.x STATUS REASON CRLF  header lines CRLF CRLF  body

The answer's body is framed, as RFC 9112 section 6.3 says, by ``Transfer-Encoding:
chunked``, else by ``Content-Length``, else by the connection's end; a HEAD, 1xx, 204 or
304 answer has none. Limits, checked before the bytes they limit are kept: a head line
(and a chunk-size line) of at most MAX_LINE_BYTES, at most MAX_HEADERS header lines, a
body -- or one line of a streamed body -- of at most MAX_BODY_BYTES.

Two kinds of failure, both OSError so a caller handles them as the master failing:
the peer went away or timed out (the socket's own errors), or the peer sent something
that is not an HTTP/1.1 answer (``BadAnswer``). Parsing is pure (bytes in, values out);
``open_url`` and ``Answer`` are the socket shell around it.
"""

import os

# The C module: socket.py's own imports (selectors, its enums) cost more than all of this
# module. ssl imports socket itself, for https.
import _socket

MAX_LINE_BYTES = 64 * 1024          # as http.client's _MAXLINE
MAX_HEADERS = 100                   # as http.client's _MAXHEADERS
# A pool's answer holds every job's output: 1,000 jobs of 2 x 1 MiB (output_cap_bytes' default),
# JSON-escaped, fit; json.loads of more would take several times this in memory anyway.
MAX_BODY_BYTES = 1024 * 1024 * 1024
RECV_BYTES = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})


class BadAnswer(OSError):
    """The peer's answer is not HTTP/1.1 as this client reads it, or is over a limit."""


class Headers:
    """An answer's header fields by case-insensitive name (a repeated field: its values
    joined with ", ", as RFC 9110 section 5.3 allows)."""

    def __init__(self, fields=()):
        self._fields = {}
        for name, value in fields:
            key = name.lower()
            self._fields[key] = self._fields[key] + ", " + value if key in self._fields else value

    def get(self, name, default=None):
        return self._fields.get(name.lower(), default)

    def __getitem__(self, name):
        return self._fields[name.lower()]

    def __contains__(self, name):
        return name.lower() in self._fields

    def __repr__(self):
        return "Headers(%r)" % self._fields


# -- pure: the request, the head, the framing ---------------------------------------------------
def split_url(url):
    """'https://host:8443/prefix' -> ('https', 'host', 8443, 'host:8443', '/prefix'); the
    port defaults by scheme, an IPv6 address comes in brackets."""
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in ("http", "https"):
        raise ValueError("%r is not an http:// or https:// URL" % url[:200])
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    if authority.startswith("["):
        host, _, after = authority[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise ValueError("%r names no host" % url[:200])
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError("%r: the port %r is not a number from 1 to 65535" % (url[:200], port_text[:20]))
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    return scheme, host, port, authority, (slash + path).split("#", 1)[0]


def request_bytes(method, target, authority, headers=(), body=None, close=True):
    """The request's bytes: one send. Without a body, POST and PUT say Content-Length: 0,
    as http.client does. A streamed body (a file: it has ``read``) is not among them: the
    caller's headers give its Content-Length and ``send_stream`` sends it after."""
    streamed = hasattr(body, "read")
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + authority, "Accept-Encoding: identity"]
    lines += ["Connection: close"] if close else []
    for name, value in headers:
        if any(character < " " or character == "\x7f" for character in name + value):
            raise ValueError("the request header %s holds a control character (a line break?)" % name[:100])
        lines.append("%s: %s" % (name, value))
    if streamed:
        declared_length(headers)        # checked before anything is sent
    elif body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: %d" % len(body or b""))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if streamed else head + (body or b"")


STREAM_PIECE_BYTES = 256 * 1024


def declared_length(headers):
    """The Content-Length a streamed body's caller gave, as a number."""
    for name, value in headers:
        if name.lower() == "content-length" and value.isascii() and value.isdigit():
            return int(value)
    raise ValueError("a streamed request body needs its Content-Length among the headers")


def send_stream(sock, stream, length):
    """Send ``length`` bytes read from ``stream``, a piece at a time (memory stays one piece)."""
    left = length
    while left > 0:
        piece = stream.read(min(left, STREAM_PIECE_BYTES))
        if not piece:
            raise OSError("the file ended %d bytes short of the %d announced (did it shrink?)" % (left, length))
        sock.sendall(piece)
        left -= len(piece)


def parse_status_line(line):
    """b'HTTP/1.1 200 OK\\r\\n' -> (200, 'OK')."""
    text = line.decode("latin-1").rstrip("\r\n")
    version, _, rest = text.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise BadAnswer("not an HTTP/1.1 status line: %r" % text[:100])
    return int(code), reason.strip()


def parse_header_line(line):
    """b'Name: value\\r\\n' -> ('Name', 'value')."""
    text = line.decode("latin-1").rstrip("\r\n")
    name, colon, value = text.partition(":")
    if not colon or not name or name != name.strip() or " " in name:
        raise BadAnswer("not a header line: %r" % text[:100])
    return name, value.strip(" \t")


def body_framing(method, status, headers, max_body=MAX_BODY_BYTES):
    """How the answer's body ends: ('none', 0), ('length', N), ('chunked', None) or
    ('close', None), as RFC 9112 section 6.3 orders them."""
    if method == "HEAD" or status < 200 or status in NO_BODY_STATUSES:
        return "none", 0
    coding = headers.get("Transfer-Encoding")
    if coding is not None:
        last = coding.rpartition(",")[2].strip().lower()
        return ("chunked", None) if last == "chunked" else ("close", None)
    length = headers.get("Content-Length")
    if length is None:
        return "close", None
    values = {value.strip() for value in length.split(",")}
    if len(values) != 1 or not all(value.isdigit() for value in values):
        raise BadAnswer("Content-Length %r is not one number of bytes" % length[:100])
    size = int(values.pop())
    if size > max_body:
        raise BadAnswer("an answer of %d bytes is over the client's %d" % (size, max_body))
    return "length", size


def parse_chunk_size(line):
    """b'2c4;ext=1\\r\\n' -> 708 (a chunk extension is ignored)."""
    text = line.decode("latin-1").split(";", 1)[0].strip()
    if not text or len(text) > 16 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise BadAnswer("not a chunk size: %r" % text[:100])
    return int(text, 16)


# -- the socket shell ---------------------------------------------------------------------------
class _Reader:
    """Buffered reads from a socket: whole lines (bounded) and byte counts."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = bytearray()
        self.ended = False

    def _fill(self):
        data = self.sock.recv(RECV_BYTES)
        if not data:
            self.ended = True
        self.buffer += data
        return bool(data)

    def line(self, limit, what):
        """One line with its b'\\n'; b'' at the end of the stream; BadAnswer over ``limit``."""
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                if end + 1 > limit:
                    break
                line = bytes(self.buffer[:end + 1])
                del self.buffer[:end + 1]
                return line
            if len(self.buffer) > limit:
                break
            start = len(self.buffer)
            if self.ended or not self._fill():
                line = bytes(self.buffer)
                self.buffer.clear()
                return line
        raise BadAnswer("%s over %d bytes" % (what, limit))

    def some(self, most):
        """Up to ``most`` bytes, as soon as there are any; b'' at the end of the stream."""
        if not self.buffer and not self.ended:
            self._fill()
        data = bytes(self.buffer[:most])
        del self.buffer[:most]
        return data

    def exactly(self, count, what):
        while len(self.buffer) < count:
            if self.ended or not self._fill():
                raise BadAnswer("the %s ended %d bytes early" % (what, count - len(self.buffer)))
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data


class Answer:
    """An answer whose head has been read: ``status``, ``reason``, ``headers``; its body by
    ``read()`` whole or by iterating over its lines as they come (an event stream)."""

    def __init__(self, sock, reader, status, reason, headers, framing, max_body=MAX_BODY_BYTES):
        self.sock, self._reader, self._max_body = sock, reader, max_body
        self.status, self.reason, self.headers = status, reason, headers
        self._framing, self._left = framing
        self._pieces = self._body()
        self._held = b""        # what read(size) took from a piece beyond size

    def _body(self):
        """The body's bytes, piece by piece as they arrive, never more than ``max_body``."""
        kind, reader, total, most = self._framing, self._reader, 0, self._max_body
        if kind == "none":
            return
        if kind == "length":
            yield from _counted(reader, self._left, "body")
            return
        if kind == "close":
            while True:
                piece = reader.some(RECV_BYTES)
                if not piece:
                    return
                total += len(piece)
                if total > most:
                    raise BadAnswer("an answer over the client's %d bytes" % most)
                yield piece
        while True:         # chunked
            line = reader.line(MAX_LINE_BYTES, "a chunk-size line")
            if not line:
                raise BadAnswer("the chunked body ended before its last chunk")
            size = parse_chunk_size(line)
            if size == 0:
                for _ in range(MAX_HEADERS + 1):
                    if reader.line(MAX_LINE_BYTES, "a trailer line") in (b"\r\n", b"\n", b""):
                        return
                raise BadAnswer("more than %d trailer lines" % MAX_HEADERS)
            total += size
            if total > most:
                raise BadAnswer("an answer over the client's %d bytes" % most)
            yield from _counted(reader, size, "chunk")
            if reader.exactly(2, "chunk") != b"\r\n":
                raise BadAnswer("a chunk is not followed by CRLF")

    def read(self, size=None):
        """The whole body (bytes); with ``size``, at most that many of its next bytes (b""
        at its end), so a large download is held a piece at a time."""
        if size is None:
            held, self._held = self._held, b""
            return held + b"".join(self._pieces)
        while not self._held:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._held = piece
        taken, self._held = self._held[:size], self._held[size:]
        return taken

    def __iter__(self):
        """The body's lines, each with its b'\\n' (the last one may lack it), as they come."""
        pending = b""
        for piece in self._pieces:
            pending += piece
            *lines, pending = pending.split(b"\n")
            if len(pending) > self._max_body:
                raise BadAnswer("a line over the client's %d bytes" % self._max_body)
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _counted(reader, count, what):
    """``count`` bytes from ``reader``, piece by piece as they arrive."""
    while count:
        piece = reader.some(min(count, RECV_BYTES))
        if not piece:
            raise BadAnswer("the %s ended %d bytes early" % (what, count))
        count -= len(piece)
        yield piece


def read_answer(sock, method, max_body=MAX_BODY_BYTES):
    """The answer's head from ``sock``, 1xx interim answers skipped; its body is read
    later, from the Answer, up to ``max_body`` bytes."""
    reader = _Reader(sock)
    while True:
        line = reader.line(MAX_LINE_BYTES, "the status line")
        if not line:
            raise ConnectionResetError("the server closed the connection without an answer")
        status, reason = parse_status_line(line)
        fields = []
        while True:
            line = reader.line(MAX_LINE_BYTES, "a header line")
            if line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                raise BadAnswer("the answer's head broke off")
            if len(fields) == MAX_HEADERS:
                raise BadAnswer("more than %d header lines" % MAX_HEADERS)
            fields.append(parse_header_line(line))
        if status >= 200 or status == 101:
            headers = Headers(fields)
            return Answer(sock, reader, status, reason, headers, body_framing(method, status, headers, max_body),
                          max_body)


def open_url(method, url, body=None, headers=(), timeout=60.0, tls=None, environ=os.environ):
    """Send one request and read the answer's head; ``tls(sock, host)`` wraps the socket
    of an https URL (pcci.client.transport checks the certificate there). ``timeout``
    bounds the connect and each read, as urllib's does. The caller closes the Answer."""
    scheme, host, port, authority, path = split_url(url)
    target, address, headers = path or "/", (host, port), list(headers)
    proxy = _proxy_for(scheme, authority, environ)
    if proxy is not None:
        address, authorization = proxy
        proxy_headers = [("Proxy-Authorization", authorization)] if authorization else []
        if scheme == "http":
            target = "http://%s%s" % (authority, target)     # the absolute form a proxy takes
            headers += proxy_headers
    sock = connect(address, timeout)
    try:
        if scheme == "https":
            if proxy is not None:
                _tunnel(sock, authority, proxy_headers)     # the master never sees them
            import socket
            sock = socket.socket(fileno=sock.detach())
            sock.settimeout(timeout)
            sock = tls(sock, host)
        sock.sendall(request_bytes(method, target, authority, headers, body))
        if hasattr(body, "read"):
            send_stream(sock, body, declared_length(headers))
        return read_answer(sock, method)
    except BaseException:
        sock.close()
        raise


def connect(address, timeout):
    """A TCP connection to the first of the host's addresses that answers, no Nagle delay
    (a request leaves in one send anyway); ``timeout`` bounds the connect and each I/O."""
    host, port = address
    if host.isascii():
        host = host.encode("ascii")     # so getaddrinfo needs no IDNA codec (1 ms of imports)
    failure = None
    for family, kind, proto, _, sockaddr in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    raise failure or OSError("no address for %r" % address[0])


def _proxy_for(scheme, authority, environ):
    """((host, port), Proxy-Authorization or None) when a *_proxy variable sends this URL
    through a proxy, as urllib would (its no_proxy rules, imported only then); else None."""
    proxies = proxies_from(environ)
    if scheme not in proxies:
        return None
    import urllib.request
    if urllib.request.proxy_bypass_environment(authority, proxies):
        return None
    _, user, password, hostport = urllib.request._parse_proxy(proxies[scheme])
    _, proxy_host, proxy_port, _, _ = split_url("http://" + hostport)
    authorization = None
    if user is not None:
        import base64
        import urllib.parse
        credentials = "%s:%s" % (urllib.parse.unquote(user), urllib.parse.unquote(password or ""))
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return (proxy_host, proxy_port), authorization


def proxies_from(environ):
    """scheme -> proxy URL from *_proxy variables, as urllib.request.getproxies_environment
    reads them (lowercase wins; a CGI script ignores HTTP_PROXY), but from ``environ``."""
    proxies = {}
    for name, value in environ.items():
        name = name.lower()
        if value and name.endswith("_proxy"):
            proxies[name[:-6]] = value
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            if value:
                proxies[name[:-6]] = value
            else:
                proxies.pop(name[:-6], None)
    return proxies


def _tunnel(sock, authority, headers):
    """CONNECT through the proxy to ``authority``; TLS goes through the tunnel after."""
    sock.sendall(request_bytes("CONNECT", authority, authority, headers, close=False))
    answer = read_answer(sock, "CONNECT")
    if answer.status != 200:
        raise OSError("the proxy refused the tunnel: %d %s" % (answer.status, answer.reason))
    if answer._reader.buffer:
        raise BadAnswer("the proxy sent bytes after its answer to CONNECT")
