"""A worker's messages, read by a greenlet only while there is something to read.

A greenlet parked in a read keeps its saved C stack and its frame stack: about 9 KB a
connection in gevent 22.10 and 26.9 (docs/performance.md, "The master's memory per idle
worker"), 90 MB at 10,000 idle workers. So an idle link is watched by a libev io watcher
and a timer instead (under 0.3 KB): when the socket turns readable a reader greenlet is
handed the link, reads and handles every message that can be had without waiting, and
the watcher starts again. A handler may still block (its greenlet then waits as before).

Dead peers are found as before: a link silent for ``silence_timeout`` (bytes received,
not messages: a large frame arriving slowly is not silence) ends with ConnectionClosed,
checked by one timer per link that is re-armed lazily (once per timeout, not per read).
A link closed by the master (``Link.close``, from any greenlet) ends its reader too.

Links that turn readable wait in one queue (``_ready``), and a reader greenlet takes
them one after the other: when thousands turn readable at once (a fan-out's results),
one greenlet handles them all, where a greenlet for each link cost a start (about 20 µs:
each new greenlet gets its own frame stack under Python 3.11) or a switch each, 10,000
a fan-out at 10,000 workers. A handler may block (a result for a pool read back from
the store): the loop then runs ``_guard``, scheduled when the reader began, which wakes
another reader for the links queued behind it, as does a link turning readable while no
reader is on its way; so a blocked handler still holds up no other link. Up to
``SPARE_READERS`` wait parked between bursts.

A reader gives the event loop a turn (``gevent.sleep(0)``) after every
``MESSAGES_PER_TURN`` messages or ``BYTES_PER_TURN`` bytes: a worker that sends faster than the master handles its
frames (a flood, a huge burst) would otherwise keep its reader looping, and the loop from
every other worker, the API and the timers, for as long as it kept sending.

The turns protect the others whatever the worker sends, so taking one is no sign of
abuse: an honest worker's fetch chunk, large result or stretch of live output takes one
per megabyte, and a burst of small frames (results kept while the master was away)
takes a few. What no honest worker does is keep up a stream of small frames (the costly
kind: a handler call each) on and on: its frames are paced by acknowledgements, by its
heartbeat interval, by what it captured. So the warning an operator sees (once a session)
is for that only, counted as a rate over windows of 10 s or more: ``is_flood``.

The reader calls its ``owner`` (shared by every session: no closure per connection):
``owner.received(session, message)`` for each message, and ``owner.ended(session, exc)``
once, on a greenlet of its own, with what ended it.
"""

import collections
import logging

import gevent
from greenlet import getcurrent

from ..framing import ConnectionClosed

log = logging.getLogger(__name__)

# Messages handled in one go before the other links, the API and the timers get a turn.
MESSAGES_PER_TURN = 64
BYTES_PER_TURN = 1024 * 1024
# A flood, not a burst: FLOOD_TURNS x MESSAGES_PER_TURN frames or more in every FLOOD_SECONDS
# of a window at least that long (640 a second, kept up). A link's reads stop at a TLS
# record's end (pcci.link.receive_ready), so "the link never ran dry" cannot be seen from
# inside one read: the rate is counted across them.
FLOOD_TURNS = 100
FLOOD_SECONDS = 10.0
# Links read in one go by a reader before the loop gets a turn (to poll the other
# sockets, run the timers and the store's answers), as a callback each once had.
LINKS_PER_TURN = 64
# Parked reader greenlets kept for the next burst (about 9 KB each).
SPARE_READERS = 32
_spare = []
_ready = collections.deque()    # SessionReaders whose sockets turned readable, oldest first
_woken = False                  # a reader is on its way to the queue (woken, not yet running)
_guarded = False                # a _guard is scheduled: it runs once the reading reader yields


def is_flood(message_turns, seconds):
    """Whether a link that sent ``message_turns`` x MESSAGES_PER_TURN frames in a window of
    ``seconds`` is flooding the master (pure): a window long enough, at a flood's rate."""
    return seconds >= FLOOD_SECONDS and message_turns * FLOOD_SECONDS >= FLOOD_TURNS * seconds


def _reader_loop():
    """Reads the ready links, one after another, parking when there are none."""
    global _woken, _guarded
    hub = gevent.get_hub()
    while True:
        _woken = False
        handled = 0
        while _ready:
            if not _guarded:
                _guarded = True
                hub.loop.run_callback(_guard)
            _ready.popleft()._read()
            handled += 1
            if handled == LINKS_PER_TURN and _ready:
                handled = 0
                _woken = True       # this reader goes on after the loop's turn: none other is needed
                try:
                    gevent.sleep(0)
                finally:
                    _woken = False
        if len(_spare) >= SPARE_READERS:
            return
        _spare.append(getcurrent())
        hub.switch()                # woken by _wake


def _guard():
    """Run by the loop once a reader has yielded: if it did so in a handler that blocks,
    the links queued behind it get another reader now, not when the handler returns."""
    global _guarded
    _guarded = False
    if _ready and not _woken:
        _wake()


def _wake():
    """A reader for the queue: a parked one, or a new one if none is parked."""
    global _woken
    _woken = True
    if _spare:
        gevent.get_hub().loop.run_callback(_spare.pop().switch)
    else:
        gevent.spawn_raw(_reader_loop)


class SessionReader:
    # One for each connected worker: no __dict__.
    __slots__ = ("link", "session", "owner", "timeout", "_loop", "_watcher", "_timer", "_heard", "_reading", "_done",
                 "_flooded", "_window_messages", "_window_since")

    def __init__(self, link, session, owner, silence_timeout):
        self.link = link
        self.session = session
        self.owner = owner
        self.timeout = silence_timeout
        self._loop = gevent.get_hub().loop
        self._watcher = self._timer = None
        self._heard = 0.0
        self._reading = False
        self._done = False
        self._flooded = False
        self._window_messages, self._window_since = 0, 0.0     # the frames counted for is_flood

    def start(self):
        """Handle what the link already holds, then watch it."""
        self.link.on_closed = self._closed
        self._heard = self._window_since = self._loop.now()
        self._watcher = self._loop.io(self.link.sock.fileno(), 1)
        self._arm_timer(self.timeout)
        self._readable()        # the handshake's reads may have taken more than its own frames

    def _readable(self):
        self._watcher.stop()
        self._reading = True
        _ready.append(self)
        if not _woken:
            _wake()

    def _read(self):
        try:
            self._heard = self._loop.now()
            handled, turn_began = 0, self.link.bytes_read
            while not self._done:
                message = self.link.receive_ready()
                if message is None:
                    break
                self.owner.received(self.session, message)     # may block
                handled += 1
                self._window_messages += 1
                if self._window_messages % MESSAGES_PER_TURN == 0:
                    self._judge_flood()
                if handled == MESSAGES_PER_TURN or self.link.bytes_read - turn_began >= BYTES_PER_TURN:
                    gevent.sleep(0)     # the other links, the API and the timers first
                    handled, turn_began = 0, self.link.bytes_read
        except BaseException as exc:    # noqa: B902 -- every end, a bug's too, must release the session
            self._end(exc)
        finally:
            self._reading = False
        if not self._done:
            self._watcher.start(self._readable)

    def _judge_flood(self):
        """Warn, once a session, when its frames are a flood (``is_flood``), not a burst; a
        window at least FLOOD_SECONDS long that is not one starts a new one."""
        now = self._loop.now()
        seconds = now - self._window_since
        if seconds < FLOOD_SECONDS or self._flooded:
            return
        if not is_flood(self._window_messages // MESSAGES_PER_TURN, seconds):
            self._window_messages, self._window_since = 0, now
            return
        self._flooded = True
        log.warning("worker %s has sent small messages faster than the master handles them for %.0f s "
                    "on end; its link takes turns with the others", getattr(self.session, "name", self.link.peer),
                    seconds)

    def _arm_timer(self, seconds):
        if self._timer is not None:
            self._timer.close()
        self._timer = self._loop.timer(seconds)
        self._timer.start(self._check_silence)

    def _check_silence(self):
        if self._done:
            return
        silent = self._loop.now() - self._heard
        if self._reading or silent < self.timeout:      # a busy reader is not silent
            self._arm_timer(self.timeout if self._reading else self.timeout - silent)
            return
        self._end(ConnectionClosed("nothing received for %ss" % self.timeout))

    def _closed(self):
        """The link was closed (by the master, or a failed write): end on a greenlet of its own."""
        self._end(ConnectionClosed("closed by the master"))

    def _end(self, exc):
        if self._done:
            return
        self._done = True
        self._watcher.stop()
        self._watcher.close()
        self._timer.close()
        self.link.on_closed = None
        gevent.spawn_raw(self.owner.ended, self.session, exc)
