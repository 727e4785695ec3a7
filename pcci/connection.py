"""A framed connection on a gevent socket: one writer greenlet, a bounded read loop.

All sends go through one queue and one writer greenlet, so frames from many greenlets
never interleave, and a burst of frames leaves in one sendall.
"""

import collections
import logging
import socket

import gevent
from gevent.queue import Queue

from . import framing

log = logging.getLogger(__name__)

_CLOSE = object()


def tune_socket(sock):
    """No Nagle delay for small frames; TCP keepalive to notice a vanished peer."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        pass


class Connection:
    def __init__(self, sock, max_frame_bytes, peer=""):
        self.sock = sock
        self.peer = peer
        self.decoder = framing.FrameDecoder(max_frame_bytes)
        self.closed = False
        self._pending = collections.deque()
        self._outgoing = Queue()
        self._writer = gevent.spawn(self._write_loop)

    def send(self, message):
        if not self.closed:
            self._outgoing.put(framing.encode(message))

    def send_now(self, message, timeout=5.0):
        """Send synchronously (handshakes and last words), bypassing the queue."""
        with gevent.Timeout(timeout, framing.ConnectionClosed("send timed out")):
            try:
                self.sock.sendall(framing.encode(message))
            except OSError as exc:
                raise framing.ConnectionClosed(str(exc))

    def receive(self, timeout=None):
        """The next message; ConnectionClosed when the peer goes or stays silent past timeout."""
        if self._pending:
            return self._pending.popleft()
        with gevent.Timeout(timeout, framing.ConnectionClosed("nothing received for %ss" % timeout)):
            while not self._pending:
                try:
                    data = self.sock.recv(65536)
                except OSError as exc:
                    raise framing.ConnectionClosed(str(exc))
                if not data:
                    raise framing.ConnectionClosed("peer closed the connection")
                self._pending.extend(self.decoder.feed(data))
        return self._pending.popleft()

    def _write_loop(self):
        while True:
            item = self._outgoing.get()
            if item is _CLOSE:
                return
            chunks = [item]
            while not self._outgoing.empty() and len(chunks) < 256:
                extra = self._outgoing.get_nowait()
                if extra is _CLOSE:
                    self._flush(chunks)
                    return
                chunks.append(extra)
            if not self._flush(chunks):
                return

    def _flush(self, chunks):
        try:
            self.sock.sendall(b"".join(chunks))
            return True
        except OSError as exc:
            log.debug("send to %s failed: %s", self.peer, exc)
            self.close()
            return False

    def drain(self, timeout):
        """Wait until queued frames have been written (or the timeout passes)."""
        self._outgoing.put(_CLOSE)
        self._writer.join(timeout=timeout)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self._outgoing.put(_CLOSE)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
