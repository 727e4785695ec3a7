"""The REST API's HTTP server: where it listens, TLS, and limits on slow or greedy clients.

Off loopback the API serves https by default: with the certificate the config names, or
else with one the master makes in state_dir/tls at first start. Plain HTTP off loopback
needs ``api_plain_http: true`` and is logged as a warning, since tokens would then
cross the network in clear.
"""

import logging
import os
import socket

import gevent
from gevent.pywsgi import MAX_REQUEST_LINE, LoggingLogAdapter, WSGIHandler, WSGIServer

from .. import tls
from ..clock import monotonic
from ..link import tune_socket
from ..log_budget import BudgetedLog
from ..connection_limits import ConnectionLimits
from ..displacing import close_slot
from .api_edge import is_loopback_host
from .http_framing import bad_request, framing_problem, uri_too_long

log = logging.getLogger(__name__)


def api_host(cfg, tokens):
    """Without a token the API may only listen on loopback."""
    if tokens or is_loopback_host(cfg.api_host):
        return cfg.api_host
    log.warning("no api_tokens configured: the REST API listens on 127.0.0.1 only, not %s; "
                "add a token to serve other hosts", cfg.api_host)
    return "127.0.0.1"


def api_tls(cfg, host):
    """The server TLS context to serve https with, or None for plain http."""
    if cfg.api_tls_cert:
        return tls.server_context(cfg.api_tls_cert, cfg.api_tls_key)
    if is_loopback_host(host):
        return None
    if cfg.api_plain_http:
        log.warning("api_plain_http is true: the API on %s is plain HTTP, so API tokens, commands and their "
                    "output cross the network in clear", host)
        return None
    cert = os.path.join(cfg.state_dir, "tls", "api.crt")
    key = os.path.join(cfg.state_dir, "tls", "api.key")
    extra = list(cfg.api_tls_names) + ([] if host in ("0.0.0.0", "::") else [host])
    tls.ensure_certificate(cert, key, "pcci-master API", extra_names=extra)
    log.info("API: https with the certificate %s (%s); check it from clients with curl --cacert %s, "
             "pcci --cacert %s, or pcci --fingerprint %s", cert, tls.file_fingerprint(cert), cert, cert,
             tls.file_fingerprint(cert))
    return tls.server_context(cert, key)


class BudgetedLogAdapter(LoggingLogAdapter):
    """pywsgi's error log (one line per bad request) through a log budget."""

    def __init__(self, logger, level):
        super().__init__(logger, level)
        self._notes = BudgetedLog(logger, monotonic)

    def write(self, msg):
        msg = msg.rstrip()
        if msg:
            self._notes.log(self._level, "http", "%s", msg)


class HeadTooSlow(socket.timeout):
    """A request head still incomplete at its deadline (a slowloris client)."""


class BadFraming(ValueError):
    """A request head whose body two parsers could frame two ways (http_framing)."""


class DeadlineHandler(WSGIHandler):
    """A request head must arrive whole within ``head_timeout`` of its first byte; waiting
    for that first byte is bounded by the socket's idle timeout."""

    head_timeout = 10.0
    _deadline = None

    def read_requestline(self):
        self.server.between_requests(True)      # a newcomer over a cap may displace it now
        self.rfile.peek(1)
        self._deadline = gevent.Timeout.start_new(
            self.head_timeout, HeadTooSlow("request head not complete after %ss" % self.head_timeout))
        try:
            return super().read_requestline()
        except BaseException:
            self._deadline.cancel()
            raise

    def read_request(self, raw_requestline):
        try:
            answer = super().read_request(raw_requestline)
            self.server.between_requests(False)   # being answered: never displaced
            return answer
        finally:
            self._deadline.cancel()     # the application (a long ?wait=, say) runs without it

    def MessageClass(self, *args):  # noqa: N802 (pywsgi's name): the head, before pywsgi acts on it
        headers = super().MessageClass(*args)
        problem = None if headers.status else framing_problem(headers.get_all("Content-Length") or [],
                                                               headers.get_all("Transfer-Encoding") or [])
        if problem:
            raise BadFraming(problem)
        return headers

    def _handle_client_error(self, ex):
        """pywsgi's 400 (logged by it, connection closed), with a JSON body."""
        status, _ = super()._handle_client_error(ex)
        return status, bad_request(str(ex) if isinstance(ex, BadFraming) else "the request is not valid HTTP/1.1")

    def handle_one_request(self):
        try:
            answer = super().handle_one_request()
            if isinstance(answer, tuple) and answer[0] == "414":
                return answer[0], uri_too_long(MAX_REQUEST_LINE)     # pywsgi's own is empty, not JSON
            return answer
        finally:
            # An empty or overlong request line never reaches read_request.
            if self._deadline is not None:
                self._deadline.cancel()


class ApiServer(WSGIServer):
    """API connections get no Nagle delay -- pywsgi may write a response's headers and
    body separately, and on keep-alive Nagle then waits for the client's delayed ACK
    (~40 ms a response) -- a timeout on each read and write, a deadline for each request
    head, and caps on connections per client address, per network and in all. Over a cap a
    newcomer displaces an idle connection (one waiting for its next request) of a busier
    address or network, so a flood of idle connections cannot keep /health or anyone else
    out (connection_limits.py)."""

    handler_class = DeadlineHandler

    def __init__(self, listener, application, cfg, **kwargs):
        super().__init__(listener, application, log=None,
                         # The server's own complaints are about clients (a garbled request line): info,
                         # and budgeted like every per-connection line.
                         error_log=BudgetedLogAdapter(logging.getLogger("pcci.http"), logging.INFO), **kwargs)
        self.idle_timeout = cfg.api_idle_timeout
        self.handler_class = type("Handler", (DeadlineHandler,), {"head_timeout": cfg.api_head_timeout})
        self.limits = ConnectionLimits(cfg.api_max_connections, cfg.api_max_connections_per_address,
                                       cfg.api_max_connections_per_prefix)
        self.slots = {}             # client socket -> its slot; the slot's holder is its greenlet
        self._slot_of = {}          # greenlet -> its slot
        self.notes = BudgetedLog(log, monotonic)

    def do_handle(self, sock, address):
        """In the accept loop: over a cap, the connection is closed before it costs a greenlet."""
        admission = self.limits.admit(address[0])
        if admission.slot is None:
            self.notes.warning("refused", "API connection from %s refused: %s (%d refused so far)", address[0],
                               admission.reason, self.limits.refused)
            sock.close()
            return
        if admission.evict is not None:
            self.notes.info("evicted", "API connection from %s closed while idle, to make room for %s (%d so far)",
                            admission.evict.address, address[0], self.limits.evicted)
            close_slot(admission.evict)
        admission.slot.holder = sock
        self.slots[sock] = admission.slot
        tune_socket(sock)
        # Set before any TLS handshake, which must not wait forever either.
        sock.settimeout(self.idle_timeout)
        super().do_handle(sock, address)

    def _started(self, sock):
        """In the connection's greenlet, first thing: False if it was displaced before it ran."""
        slot = self.slots.get(sock)
        if slot is None:
            return True
        if slot.evicted:
            return False
        slot.holder = gevent.getcurrent()
        self._slot_of[slot.holder] = slot
        return True

    def between_requests(self, idle):
        slot = self._slot_of.get(gevent.getcurrent())
        if slot is not None:
            self.limits.set_idle(slot, idle)

    def handle(self, sock, address):
        if self._started(sock):
            super().handle(sock, address)

    def wrap_socket_and_handle(self, client_socket, address):
        if not self._started(client_socket):
            return None
        try:
            return super().wrap_socket_and_handle(client_socket, address)
        except OSError as exc:   # ssl.SSLError too: a failed handshake is the client's problem
            self.notes.info("tls", "API connection from %s: TLS handshake failed: %s%s", address[0],
                            getattr(exc, "reason", None) or exc, " (plain http sent to the https port)"
                            if getattr(exc, "reason", "") == "HTTP_REQUEST" else "")

    def do_close(self, sock, address):
        slot = self.slots.pop(sock, None)
        if slot is not None:
            self._slot_of.pop(slot.holder, None)
            self.limits.release(slot)
        super().do_close(sock, address)

