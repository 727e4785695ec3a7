"""A link: the framed message stream between a worker and the master, on a gevent socket.

Queued sends, a bounded read loop. The master's side of a link is
``pcci.master.worker_port``, the worker's ``pcci.worker.master_link``.

Sends from many greenlets are queued and written in order by one writer greenlet at a
time, so frames never interleave, and a burst of frames leaves in one sendall.
"""

import logging
import socket
import ssl

import gevent
import gevent.socket

from . import framing

log = logging.getLogger(__name__)

# Queued frames up to this many bytes leave in one sendall; larger bursts one by one.
JOIN_BYTES = 1024 * 1024
# A frame given as its payload up to this size is joined to its header: one TLS record
# and one write instead of two; a larger one is not copied for that.
JOIN_PAYLOAD_BYTES = 64 * 1024


class TlsFailure(framing.ConnectionClosed):
    """A TLS record failed its checks: bytes forged or damaged on the way, or a peer that
    does not speak TLS. The link is closed like any other lost connection, but said so."""

    def __init__(self, exc):
        super().__init__("TLS error (data forged or damaged on the way?): %s" % (exc.reason or exc))


def tune_socket(sock):
    """No Nagle delay for small frames; TCP keepalive to notice a vanished peer."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        pass


class Link:
    """Frames out and in. Sends are queued and written by a short-lived writer greenlet,
    started only while there is something to write: an idle connection costs no greenlet,
    a burst leaves in one sendall, and a stalled peer never blocks the sender."""

    def __init__(self, sock, max_frame_bytes, peer="", on_drained=None, decoder=None):
        self.sock = sock
        self.peer = peer
        # ``decoder``: a FrameDecoder of the caller's (the master's spills large results).
        self.decoder = decoder or framing.FrameDecoder(max_frame_bytes)
        self.closed = False
        # Decoded messages not yet taken, oldest last (pop() takes it): a list, not a
        # deque, which costs 0.7 KB even when empty (the master holds one per worker).
        self._pending = []
        self._outgoing = []
        self._outgoing_bytes = 0
        self._writer = None
        # Called (from the writer) each time the queue has been written out: best-effort
        # senders that held back for a congested link go on then, not on a timer.
        self.on_drained = on_drained
        # Called once by close(), before the socket is closed: a reader that watches the
        # socket (master/session_reader.py) stops watching and ends the session.
        self.on_closed = None
        # A TLS write that would block must be retried with the very same bytes (OpenSSL
        # has taken part of them): the writer sends this first, alone.
        self._tls_retry = None
        self._tls = getattr(sock, "_sslobj", None) is not None
        self._read_timeout = sock.gettimeout()
        # Bytes ``receive_ready`` has read: a reader gives the others a turn after enough.
        self.bytes_read = 0
        # The last read ended on a frame's end, with nothing left inside OpenSSL: the next
        # ``receive_ready`` says None without trying another read (see there).
        self._caught_up = False

    def send(self, message):
        """Queue a message (a dict, or a frame already encoded) without ever blocking the caller."""
        if self.closed:
            return
        self._queue(message if isinstance(message, bytes) else framing.encode(message))

    def send_payload(self, payload):
        """Queue a frame given as its encoded payload (a large result, also written to the
        spool from the same bytes), bytes or a tuple of parts (framing.encode_blob_payload):
        header and parts leave without being joined."""
        if self.closed:
            return
        parts = payload if isinstance(payload, tuple) else (payload,)
        size = framing.payload_size(payload)
        if size <= JOIN_PAYLOAD_BYTES:         # a small frame: one write, one TLS record
            self._queue(b"".join((framing.HEADER.pack(size),) + parts))
            return
        self._queue(framing.HEADER.pack(size))
        for part in parts:
            self._queue(part)

    def _queue(self, data):
        if self.closed:         # closed meanwhile: by a failed write of the frame's header, say
            return
        if self._writer is None:
            # First a direct write that never waits: most frames leave at once, without a greenlet.
            try:
                if self._tls:
                    self._write_tls_now(data)
                    return
                data = self._write_plain_now(data)
            except OSError as exc:
                log.debug("send to %s failed: %s", self.peer, exc)
                self.close()
                return
            if not data:
                return
        self._outgoing.append(data)
        self._outgoing_bytes += len(data)
        if self._writer is None:
            self._writer = gevent.spawn(self._write_all)

    def queued_bytes(self):
        """Bytes waiting for the writer: what a best-effort sender checks before adding more."""
        return self._outgoing_bytes + (len(self._tls_retry) if self._tls_retry is not None else 0)

    def _write_plain_now(self, data):
        """What is left of ``data`` after one non-blocking send."""
        try:
            sent = self.sock.send(data, 0, timeout=0.0)
        except BlockingIOError:
            sent = 0
        return data if sent == 0 else memoryview(data)[sent:]     # no copy of a large rest

    def _write_tls_now(self, data):
        """Write ``data`` as TLS records now; if that would block, the writer retries it as it is."""
        try:
            self.sock._sslobj.write(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            self._tls_retry = data
            self._writer = gevent.spawn(self._write_all)

    def _write_all(self):
        try:
            if self._tls_retry is not None:
                retry, self._tls_retry = self._tls_retry, None
                self.sock.send(retry)       # gevent's send: the same bytes again until taken
            while not self.closed:
                while self._outgoing and not self.closed:
                    chunks, self._outgoing = self._outgoing, []
                    size, self._outgoing_bytes = self._outgoing_bytes, 0
                    if size <= JOIN_BYTES:
                        self.sock.sendall(b"".join(chunks))
                    else:
                        for chunk in chunks:    # a large result: not copied into one buffer
                            self.sock.sendall(chunk)
                if self.on_drained is not None:
                    self.on_drained()           # may queue more, written in this same loop
                if not self._outgoing:
                    break
        except OSError as exc:
            log.debug("send to %s failed: %s", self.peer, exc)
            self.close()
        finally:
            self._writer = None

    def send_now(self, message, timeout=5.0):
        """Send synchronously (handshakes and last words), bypassing the queue."""
        data = message if isinstance(message, bytes) else framing.encode(message)
        with gevent.Timeout(timeout, framing.ConnectionClosed("send timed out")):
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise framing.ConnectionClosed(str(exc))

    def receive(self, timeout=None):
        """The next message; ConnectionClosed when the peer goes or stays silent past timeout."""
        if self._pending:
            return self._pending.pop()
        if timeout != self._read_timeout:
            # The socket's own timeout, not a gevent.Timeout per call: that costs a timer
            # for every message on the result path, even when the data is already there.
            self.sock.settimeout(timeout)
            self._read_timeout = timeout
        while not self._pending:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise framing.ConnectionClosed("nothing received for %ss" % timeout)
            except ssl.SSLError as exc:
                raise TlsFailure(exc)
            except OSError as exc:
                raise framing.ConnectionClosed(str(exc))
            if not data:
                raise framing.ConnectionClosed("peer closed the connection")
            self._pending = self.decoder.feed(data)[::-1]
        return self._pending.pop()

    def receive_ready(self):
        """The next message if it can be had without waiting, else None; ConnectionClosed
        as ``receive``. For a reader started when the socket is readable: it reads until
        this says None, and holds no greenlet meanwhile. The socket's timeout is left as
        it is: it bounds the writer's sends.

        Once a read has ended exactly on a frame's end and OpenSSL holds no decrypted
        bytes, this says None at once instead of reading again: most wakeups bring one
        frame (a result, a heartbeat), and the read that would find nothing costs a
        system call and an SSLWantReadError each time, 10,000 a fan-out at 10,000
        workers. Nothing is left behind: OpenSSL (no read-ahead) takes no bytes from the
        socket beyond the record it returns, and the reader's io watcher is level-
        triggered, so bytes still in the socket wake it again at once."""
        if self._pending:
            return self._pending.pop()
        if self.closed:
            raise framing.ConnectionClosed("closed by the master")
        if self._caught_up:
            self._caught_up = False
            return None
        while not self._pending:
            try:
                data = self._read_now()
            except ssl.SSLWantWriteError:   # OpenSSL must write first (a key update): wait for room
                try:
                    gevent.socket.wait_write(self.sock.fileno(), self.sock.gettimeout())
                except OSError as exc:
                    raise framing.ConnectionClosed(str(exc))
                continue
            except ssl.SSLError as exc:
                raise TlsFailure(exc)
            except OSError as exc:
                raise framing.ConnectionClosed(str(exc))
            if data is None:
                return None
            if not data:
                raise framing.ConnectionClosed("peer closed the connection")
            self.bytes_read += len(data)
            self._pending = self.decoder.feed(data)[::-1]
        self._caught_up = self.decoder.between_frames() and not (self._tls and self.sock._sslobj.pending())
        return self._pending.pop()

    def _read_now(self):
        """Bytes read without waiting (b"" at the end of the stream), None if there are none
        yet: the TLS object or the OS socket under gevent's, whose reads would wait."""
        try:
            if self._tls:
                return self.sock._sslobj.read(65536)
            return self.sock._sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            return None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.on_closed is not None:
            self.on_closed()
        self._outgoing = []
        self._outgoing_bytes = 0
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
