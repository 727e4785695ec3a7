"""The API's one edge: every route passes through ``ApiEdge``, and bottle's own errors
through ``JsonErrorsApp``, so a route added later cannot be open or answer HTML by
mistake. Without tokens (the API then listens on loopback only) the edge also
refuses requests addressed to another host name (a DNS-rebinding page) and
state-changing requests from another origin (a page posting across origins).

``ApiEdge`` is a bottle plugin: it checks the bearer token and its scope against the
route's ``scope`` (unless the route was declared with ``open=True``; a route that
declares neither needs ``admin``), runs the route, turns an ``ApiError`` into its JSON
and status, a crash into a logged traceback and a 500 without one, and logs each
failure once. Every state-changing call, allowed or not, also writes one line to the
``pcci.audit`` log: who (token name), from where, what, and the answer. Routes return
``(status, data)`` and find their caller with ``caller(request)``.
"""

import json
import logging
import socket

from .. import api_tokens
from ..client_ip import client_ip
from ..clock import monotonic
from ..errors import ApiError, BadToken, ForbiddenHost, ForbiddenOrigin, InsufficientScope, InternalError, \
    MalformedRequest, MissingToken, PayloadTooLarge, RequestTimeout, for_status
from .greenlet_locals import import_bottle
from .origins import is_loopback_host, is_same_origin

bottle = import_bottle()
log = logging.getLogger(__name__)
audit_log = logging.getLogger("pcci.audit")
CALLER = "pcci.caller"
AUDIT_NOTE = "pcci.audit"

REALM = 'Bearer realm="pcci"'


def to_json_bytes(data):
    """An answer's JSON, encoded here rather than by bottle: text the master holds may carry
    a lone surrogate (from a worker or a store), which UTF-8 cannot encode and bottle then
    answers with an HTML page; backslashreplace writes it as the JSON escape \\udXXX."""
    return (json.dumps(data, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8", "backslashreplace")


class JsonErrorsApp(bottle.Bottle):
    """Bottle's own errors (no route, wrong method, crash) as JSON, never its HTML page."""

    def default_error_handler(self, res):
        bottle.response.content_type = "application/json"
        bottle.response.set_header("X-Content-Type-Options", "nosniff")
        error = for_status(res.status_code)
        message = res.body if isinstance(res.body, str) and res.body else res.status_line
        if res.status_code == 405:
            message = "method %s is not allowed on %s" % (bottle.request.method, bottle.request.path)
        elif res.status_code == 404:
            message = "no such endpoint: %s %s" % (bottle.request.method, bottle.request.path)
        elif res.status_code >= 500:
            message = "internal error; see the master's log"
        log.info("%s %s -> %d", bottle.request.method, bottle.request.path, res.status_code)
        if bottle.request.method in STATE_CHANGING:     # a probe for endpoints is audited too
            edges = [plugin for plugin in self.plugins if isinstance(plugin, ApiEdge)]
            bottle.request.environ[CALLER] = edges[0].identify(bottle.request) if edges else None
            _audit(bottle.request, res.status_code, {"error": {"code": error.code}})
        return to_json_bytes({"error": {"code": error.code, "message": message}})


class Document:
    """What a route returns to answer with bytes of another type than JSON (the metrics'
    text, the dashboard's files, an event stream), with their own headers; errors found
    before it are JSON as always."""

    def __init__(self, body, content_type, headers=None):
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def EventStream(body):  # noqa: N802 (reads as the kind of answer it is)
    """A text/event-stream answer of ``sse.stream``'s bytes."""
    return Document(body, "text/event-stream; charset=utf-8",
                    # nginx: pass events on at once
                    {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def caller(request):
    """The ApiToken the request was made with (``api_tokens.LOCAL_USER`` on a tokenless master)."""
    return request.environ.get(CALLER, api_tokens.LOCAL_USER)


def header(request, name, default=None):
    """A request header as text. WSGI hands headers over as latin-1; the API's are UTF-8
    (bottle 0.13 decodes them so and raised a 500 on other bytes, 0.12 passed them on as
    latin-1): bytes that are not UTF-8 are the client's error, 400."""
    raw = request.environ.get("HTTP_" + name.upper().replace("-", "_"))
    if raw is None:
        return default
    try:
        return (raw if isinstance(raw, bytes) else raw.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        raise MalformedRequest("the %s header is not UTF-8 text" % name)


def note_for_audit(request, text):
    """What a state-changing route did, for its audit line (a pool id, say)."""
    request.environ[AUDIT_NOTE] = text


class ApiEdge:
    """Authentication, scopes, JSON errors, one log line per failure and one audit line per
    state-changing call, for every route. ``tokens`` may be replaced while serving (SIGHUP)."""

    name = "pcci_edge"
    api = 2

    def __init__(self, tokens, on_answer=None):
        self.tokens = tokens
        # on_answer(method, route, status, seconds): each answer, for the metrics.
        self.on_answer = on_answer

    def apply(self, callback, route):
        # open: True (no token), or a test of the request (metrics_open_to's networks).
        opening = route.config.get("open")
        scope = route.config.get("scope", "admin")

        def wrapped(*args, **kwargs):
            request = bottle.request
            started = monotonic()
            bottle.response.content_type = "application/json"
            # What a worker or a job wrote (output, labels, a fetched file) is never read as HTML.
            bottle.response.set_header("X-Content-Type-Options", "nosniff")
            try:
                if not self.tokens:
                    _check_browser_safety(request)
                if not (opening is True or (callable(opening) and opening(request))):
                    self._check_token(request, scope)
                status, data = callback(*args, **kwargs)
            except ApiError as exc:
                log.info("%s %s -> %d %s: %s", request.method, request.path, exc.status, exc.code,
                         exc.message)
                status, data = exc.status, exc.to_json()
                for name, value in exc.headers.items():
                    bottle.response.set_header(name, value)
                if exc.status == 401 or isinstance(exc, InsufficientScope):
                    bottle.response.set_header("WWW-Authenticate", _challenge(exc))
            except Exception:
                log.exception("%s %s failed", request.method, request.path)
                error = InternalError("internal error; see the master's log")
                status, data = error.status, error.to_json()
            bottle.response.status = status
            if request.method in STATE_CHANGING:
                _audit(request, status, data)
            if self.on_answer is not None:
                self.on_answer(request.method, route.rule, status, monotonic() - started)
            if isinstance(data, Document):
                bottle.response.content_type = data.content_type
                for name, value in data.headers.items():
                    bottle.response.set_header(name, value)
                return data.body
            return to_json_bytes(data)
        return wrapped

    def identify(self, request):
        """Whose request this is, for an audit line where no route checked it: the token
        it names, ``LOCAL_USER`` on a tokenless master, or None."""
        if not self.tokens:
            return api_tokens.LOCAL_USER
        try:
            scheme, _, given = header(request, "Authorization", "").partition(" ")
        except MalformedRequest:
            return None
        return api_tokens.match(self.tokens, given.strip()) if scheme.lower() == "bearer" and given.strip() else None

    def _check_token(self, request, scope):
        tokens = self.tokens
        if not tokens:
            request.environ[CALLER] = api_tokens.LOCAL_USER
            return
        try:
            authorization = header(request, "Authorization", "")
        except MalformedRequest:
            raise BadToken("the API token is not UTF-8 text, so not one this master accepts")
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise MissingToken("send the API token as 'Authorization: Bearer <token>'")
        token = api_tokens.match(tokens, given.strip())
        if token is None:
            raise BadToken("the API token is not one this master accepts")
        request.environ[CALLER] = token
        if not token.allows(scope):
            raise InsufficientScope("token %s has scope %s; %s %s needs %s"
                                    % (token.name, token.scope, request.method, request.path, scope))


def _audit(request, status, data):
    """One line per state-changing call: who, from where, what, and the answer."""
    who = request.environ.get(CALLER)
    error = data.get("error", {}).get("code") if isinstance(data, dict) else None
    audit_log.info("%s %s by %s from %s -> %d%s%s", request.method, request.path,
                   who.name if who else "-", request.environ.get("REMOTE_ADDR", "-"),
                   status, " " + error if error else "",
                   " (%s)" % request.environ[AUDIT_NOTE] if AUDIT_NOTE in request.environ else "")


STATE_CHANGING = ("POST", "PUT", "DELETE", "PATCH")


def from_networks(address, networks):
    """Whether a client address lies in one of the networks (metrics_open_to)."""
    if not address or not networks:
        return False
    ip = client_ip(address)
    return ip is not None and any(ip in network for network in networks)


def _check_browser_safety(request):
    host = header(request, "Host", "")
    if host and not is_loopback_host(host):
        raise ForbiddenHost("this master has no api_tokens, so it answers only requests to a loopback address, "
                            "not to Host %r" % host[:100])
    origin = header(request, "Origin")
    if origin is not None and request.method in STATE_CHANGING:
        own_host = host or "%s:%s" % (request.environ.get("SERVER_NAME", ""), request.environ.get("SERVER_PORT", ""))
        if not is_same_origin(origin, request.environ.get("wsgi.url_scheme", "http"), own_host):
            raise ForbiddenOrigin("this master has no api_tokens, so a web page from %r may not %s here"
                                  % (origin[:100], request.method))


def _challenge(error):
    """RFC 6750: say which scheme is wanted, and whether the token given was refused."""
    if isinstance(error, InsufficientScope):
        return REALM + ', error="insufficient_scope"'
    return REALM + (', error="invalid_token"' if isinstance(error, BadToken) else "")


def read_body(request, limit):
    """The raw body, refusing anything over the limit before reading it all, and a body
    that is malformed (bad chunking) or stops arriving with its own error, not a 500."""
    length = request.content_length
    if length > limit:
        raise PayloadTooLarge("the body is %d bytes; the limit is %d" % (length, limit))
    stream = request.environ["wsgi.input"]
    try:
        data = stream.read(length if length >= 0 else limit + 1)
    except socket.timeout:
        raise _closing(RequestTimeout("the request body stopped arriving"))
    except (OSError, ValueError) as exc:
        raise _closing(MalformedRequest("the request body could not be read: %s" % exc))
    if len(data) > limit:
        raise PayloadTooLarge("the body is over the %d byte limit" % limit)
    if length >= 0 and len(data) < length:
        raise _closing(MalformedRequest("the body ended after %d of its %d bytes" % (len(data), length)))
    return data


def _closing(error):
    """After a body that could not be read, the connection's bytes no longer line up with
    requests: answer, then close it."""
    bottle.response.set_header("Connection", "close")
    return error
