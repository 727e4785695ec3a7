"""A running job's output on its way to the master while the job runs (best effort).

The job's captures (``job_process.Capture``) already keep every byte up to
``output_cap_bytes``; forwarding is a cursor into them per stream, so it adds no
buffer of its own. A piece leaves at once when nothing left in the last
``COALESCE_SECONDS`` (a line printed now and then arrives without delay), otherwise
with the next one ``COALESCE_SECONDS`` after the last piece, or as soon as
``PIECE_BYTES`` are waiting. While the link is congested nothing is queued: the
cursor waits (until the link has written its queue out), the job keeps running, and
the live view lags; the final result (which is spooled and acknowledged) always
carries the whole output.

A piece ends on a whole UTF-8 character, so pieces decode to exactly the text the
final result holds (``output_text``). After a reconnect the master says where its copy of each
running job's output ends (``output_from``) and the cursors go back there, so
pieces lost with the old link are sent again.
"""

import gevent

from .. import protocol
from ..output_text import decode, whole_characters
from ..clock import monotonic
from .job_process import Capture

COALESCE_SECONDS = 0.05
PIECE_BYTES = 64 * 1024
# Bytes queued on the link (not yet handed to the kernel) above which no piece is added.
CONGESTED_BYTES = 256 * 1024


class LiveChannel:
    """The link live output goes on, while there is one and its master takes live output.
    Jobs that found it congested are told when the link has written its queue out."""

    def __init__(self, congested_bytes=CONGESTED_BYTES):
        self.link = None
        self.congested_bytes = congested_bytes
        self.held_back = set()      # LiveOutputs waiting for the link to drain

    def attach(self, link, enabled):
        """A new link (made with ``on_drained=self.drained``); ``enabled`` if its master takes
        live output."""
        self.link = link if enabled else None
        if self.link is not None:
            self.drained()

    def detach(self):
        self.link = None
        self.held_back.clear()

    def hold(self, live):
        self.held_back.add(live)

    def drained(self):
        waiting, self.held_back = self.held_back, set()
        for live in waiting:
            live.flush()

    def ready(self):
        """Whether a piece may be sent now: there is a link and it is not backed up."""
        link = self.link
        return link is not None and not link.closed and link.queued_bytes() < self.congested_bytes

    def send(self, message):
        self.link.send(message)


class LiveOutput:
    """One job's streams, captured (``captures``: stream name -> Capture, keeping at most
    ``cap`` bytes each) and forwarded as they grow."""

    def __init__(self, job_id, cap, channel):
        self.job_id = job_id
        self.captures = {name: Capture(cap, grew=self.grew) for name in protocol.STREAMS}
        self.channel = channel
        self.sent = dict.fromkeys(self.captures, 0)     # stream -> bytes forwarded (or given up on)
        self.seq = 0
        self.last_send = -COALESCE_SECONDS
        self.timer = None
        self.stopped = False

    def waiting(self):
        return sum(len(capture.kept) - self.sent[name] for name, capture in self.captures.items())

    def grew(self):
        """A capture kept more bytes: send now, or make sure a send is due soon."""
        if self.stopped or self.timer is not None:
            if self.timer is not None and self.waiting() >= PIECE_BYTES:
                self.timer.kill(block=False)
                self.timer = None
                self.flush()
            return
        due = self.last_send + COALESCE_SECONDS - monotonic()
        if due <= 0 or self.waiting() >= PIECE_BYTES:
            self.flush()
        else:
            self.timer = gevent.spawn_later(due, self._due)

    def _due(self):
        self.timer = None
        self.flush()

    def flush(self):
        """Send what waits, a piece at a time, while the link takes it; come back later for
        the rest (a congested link, or more than can leave at once)."""
        if self.stopped:
            return
        for name, capture in self.captures.items():
            while len(capture.kept) > self.sent[name] and self.channel.ready():
                if not self._send_piece(name, capture):
                    break
        if self.waiting() and not self.stopped:
            if not self.channel.ready():
                self.channel.hold(self)         # flushed again when the link drains or comes back
            elif self.timer is None:            # a character's last bytes have yet to come
                self.timer = gevent.spawn_later(COALESCE_SECONDS, self._due)

    def _send_piece(self, name, capture):
        start = self.sent[name]
        data = capture.kept[start:start + PIECE_BYTES]
        length = whole_characters(data, capture.at_eof)
        if length == 0:
            return False
        self.channel.send(protocol.output_message(self.job_id, name, start, length, self.seq,
                                                  decode(data[:length])))
        self.seq += 1
        self.sent[name] = start + length
        self.last_send = monotonic()
        return True

    def rewind(self, offsets):
        """The master's copy ends at these byte offsets: send again from there."""
        for name, offset in offsets.items():
            if name in self.sent and isinstance(offset, int) and 0 <= offset <= len(self.captures[name].kept):
                self.sent[name] = offset
        self.grew()

    def stop(self):
        """The job ended: its result carries the rest."""
        self.stopped = True
        self.channel.held_back.discard(self)
        if self.timer is not None:
            self.timer.kill(block=False)
            self.timer = None
