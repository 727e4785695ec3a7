"""A child's side of a relayed copy: pull the file's bytes from the parent the master named
(``relayFrom`` in ``copy_begin``), pinning that parent's certificate, into this copy's own
partial file.

``pull`` returns None when the file is whole (or the copy is no longer wanted here), or
why it stopped early: the parent refused, closed, failed its certificate check, or sent
nothing for ``STALL_SECONDS``, or less than ``FLOOR_BYTES`` in any ``STALL_SECONDS`` (a parent
that drips a byte at a time would otherwise reset the stall timer forever). The caller then asks the master for the rest from where
this worker's own file ends (``copy_from``): the direct path, which is always there.
"""

import logging
import socket
import ssl
import time

import gevent

from .. import relay_wire, tls
from ..framing import ConnectionClosed, FrameError
from ..link import tune_socket
from .master_link import open_tcp

log = logging.getLogger(__name__)

CONNECT_SECONDS = 5.0
STALL_SECONDS = 15.0
RECEIVE_BYTES = 256 * 1024
# The least a parent must deliver per STALL_SECONDS (~280 KB/s at 15 s): far below any
# working relay (a Pi 3B+ passes ~35 MB/s), so only a stalled or hostile one goes direct.
FLOOR_BYTES = 4 * 1024 * 1024


def client_context():
    """No CA: the child pins the parent's self-made certificate by the fingerprint the
    master gave it, over the master's authenticated link."""
    from gevent import ssl as gevent_ssl
    context = gevent_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def too_slow_problem(received, remaining, seconds, floor=FLOOR_BYTES):
    """Why a parent that delivered ``received`` bytes in ``seconds`` (with ``remaining`` to
    go at the window's start) is too slow to wait for, or None."""
    if received >= min(floor, remaining):
        return None
    return "the relay sent %d bytes in %.0f s (at least %d expected)" % (received, seconds, min(floor, remaining))


def pull(relay, child, stream, write, context, stall_seconds=STALL_SECONDS):
    """Bytes from the parent into ``write(offset, data)`` (False: the copy is gone here,
    stop quietly) until ``stream`` is whole; None when done, else why it stopped."""
    sock = None
    answer_deadline = gevent.Timeout(CONNECT_SECONDS + stall_seconds)
    try:
        with answer_deadline:
            sock = open_tcp(relay["host"], relay["port"], timeout=CONNECT_SECONDS)
            tune_socket(sock)
            sock = context.wrap_socket(sock)
            seen = tls.peer_fingerprint(sock)
            if seen != relay["fingerprint"]:
                return "the relay presented certificate %s, not %s as the master said" % (seen, relay["fingerprint"])
            sock.sendall(relay_wire.pull(relay["job"], child, stream.sha256, relay["expires"], relay["ticket"],
                                         stream.offset))
            answer = relay_wire.read_message(sock)
        if answer.get("type") != relay_wire.OK:
            # Quoted: the parent's text goes into this worker's log, where a newline would forge lines.
            return "the relay refused: %r: %r" % (str(answer.get("code"))[:40], str(answer.get("message"))[:300])
        if answer.get("bytes") != stream.size:
            return "the relay serves %r bytes, not %d" % (answer.get("bytes"), stream.size)
        window_started, window_from = time.monotonic(), stream.offset
        while not stream.complete:
            # Each window is checked when it ends, byte or no byte: checked only at the next
            # byte, a window could be stretched to almost twice its length (a parent silent
            # across its end, then one byte), halving the floor.
            left = window_started + stall_seconds - time.monotonic()
            if left <= 0:
                too_slow = too_slow_problem(stream.offset - window_from, stream.size - window_from, stall_seconds)
                if too_slow:
                    return too_slow
                window_started, window_from = time.monotonic(), stream.offset
                continue
            sock.settimeout(left)       # no timer of its own: a recv that has bytes costs none
            try:
                data = sock.recv(RECEIVE_BYTES)
            except socket.timeout:
                continue                # the window ended: checked above
            if not data:
                return "the relay closed the connection at byte %d of %d" % (stream.offset, stream.size)
            if not write(stream.offset, data):
                return None
        return None
    except gevent.Timeout as exc:
        if exc is not answer_deadline:
            raise           # a caller's own timeout is the caller's
        return "the relay did not answer within %d s" % (CONNECT_SECONDS + stall_seconds)
    except (OSError, FrameError, ConnectionClosed) as exc:     # socket.timeout is an OSError
        return "relay connection: %s" % (exc,)
    finally:
        if sock is not None:
            sock.close()
