"""The pure parts of live output: where a piece may end, how the master keeps a stream,
event ids, the event log, and how the CLI prints and parses a stream."""

import io

import pytest

from pcci.cli.follow import LinePrinter
from pcci.client.events import parse_events
from pcci.master.event_log import BadCursor, EventLog, parse_cursor
from pcci.master.pool_feeds import StreamText
from pcci.master.sse import frame
from pcci.output_text import whole_characters


@pytest.mark.parametrize("data, at_end, expected", [
    (b"plain ascii", False, 11),
    ("h\u00e9".encode(), False, 3),                  # a whole two-byte character
    ("h\u00e9".encode()[:-1], False, 1),             # its first byte waits for the second
    ("\u20ac".encode()[:2], False, 0),               # two bytes of three wait
    ("\U0001F600".encode()[:3], False, 0),           # three of four wait
    ("\U0001F600".encode(), False, 4),
    ("\u20ac".encode()[:2], True, 2),                # the stream ended: send what there is
    (b"\x80\x80", False, 2),                         # continuation bytes only: invalid, sent as is
    (b"", False, 0),
])
def test_a_piece_ends_on_a_whole_utf8_character(data, at_end, expected):
    assert whole_characters(data, at_end) == expected


def test_pieces_cut_where_whole_characters_end_decode_to_the_whole_decoded_text():
    raw = ("r\u00e9sum\u00e9 \u20ac \U0001F600 " * 50).encode() + b"\xff bad \xc3"
    pieces, start = [], 0
    for size in (7, 1, 3, 5, 2, 11) * 100:
        chunk = raw[start:start + size]
        if not chunk:
            break
        length = whole_characters(chunk, start + len(chunk) == len(raw))
        pieces.append(raw[start:start + length].decode("utf-8", "replace"))
        start += length
    assert start == len(raw)
    assert "".join(pieces) == raw.decode("utf-8", "replace")


def test_the_master_takes_only_pieces_that_continue_the_stream():
    stream = StreamText(limit=1000)
    assert stream.take(0, 6, "hello ") == (0, 6)
    assert stream.take(0, 6, "hello ") is None          # sent again: not taken twice
    assert stream.take(20, 3, "gap") is None            # pieces were lost: wait for the resend
    assert stream.take(6, 6, "world\n") == (6, 12)
    assert stream.text() == "hello world\n" and stream.byte_end == 12
    assert stream.slice(3, 9) == "lo wor"
    assert stream.take(12, 2000, "x" * 2000) is None    # more than any result could hold


def test_the_result_fills_in_what_the_pieces_lacked_and_replaces_them():
    stream = StreamText(limit=1000)
    stream.take(0, 4, "one\n")
    assert stream.settle("one\ntwo\n") == (4, 8)        # the characters to add
    assert stream.text() == "one\ntwo\n" and stream.pieces == []
    assert stream.slice(0, 4) == "one\n"                # earlier events now read the result's text
    assert stream.settle("again") is None


def test_pieces_that_are_not_the_start_of_the_result_are_left_as_they_were():
    stream = StreamText(limit=1000)
    stream.take(0, 8, "abcdefgh")
    assert stream.settle("abcd") is None                # the worker cut the result to fit a frame
    assert stream.slice(0, 8) == "abcdefgh"


def test_event_ids_name_their_log_and_a_bad_one_is_refused():
    assert parse_cursor("1a2b3c4d-17") == ("1a2b3c4d", 17)
    assert parse_cursor("17") == (None, 17)
    assert parse_cursor("end-3") == ("end", 3)
    for bad in ("", "abc", "1a2b-x", "1a2b-", "a b-1", "-" * 3 + "1" * 30):
        with pytest.raises(BadCursor):
            parse_cursor(bad)


def test_a_ring_log_forgets_old_events_and_says_who_cannot_continue():
    log = EventLog(keep=10)
    for number in range(100):
        log.append("n", number)
    assert log.last_seq == 100
    assert len(log.entries) <= 20 and log.entries[-1] == (100, "n", 99)
    assert log.continues(log.generation, 95) and log.continues(None, 100)
    assert not log.continues(log.generation, 3)         # trimmed away
    assert not log.continues("0ther", 95)               # another log
    assert [seq for seq, _, _ in log.after(97)] == [98, 99, 100]


def test_a_closed_log_takes_no_more_events():
    log = EventLog()
    log.append("a", 1)
    log.close()
    log.append("b", 2)
    assert log.last_seq == 1 and log.closed


def test_events_parse_back_from_their_wire_form():
    wire = ("retry: 2000\n\n" + frame("g-1", "output", {"text": "a\nb"}) + ": keepalive\n\n"
            + frame(None, "reset", {}) + frame("g-2", "done", {"id": "x"})).encode()
    events = list(parse_events(io.BytesIO(wire)))
    assert events == [("g-1", "output", '{"text":"a\\nb"}'), ("g-1", "reset", "{}"), ("g-2", "done", '{"id":"x"}')]


def test_lines_are_printed_whole_with_their_node_and_never_twice():
    out, err = io.StringIO(), io.StringIO()
    printer = LinePrinter(out, err)
    printer.output("pi1", "stdout", 0, "hel")
    printer.output("pi2", "stdout", 0, "other\n")
    printer.output("pi1", "stdout", 3, "lo\nwor")
    printer.output("pi1", "stderr", 0, "oops\n")
    printer.output("pi1", "stdout", 0, "hello\n")        # sent again after a reset
    printer.output("pi1", "stdout", 6, "wo")             # overlaps what was handled
    printer.output("pi1", "stdout", 9, "ld\n")
    printer.output("pi2", "stdout", 6, "no newline")
    printer.job_ended("pi2")
    assert out.getvalue() == "pi2: other\npi1: hello\npi1: world\npi2: no newline\n"
    assert err.getvalue() == "pi1: oops\n"


def test_ended_pools_logs_are_kept_within_a_count_and_a_size():
    from pcci.master import pool_feeds
    from pcci.model import Job, Pool
    from pcci.states import JobState

    def ended_pool(number, output):
        job = Job("p%d" % number, "pi1", state=JobState.SUCCEEDED, exit_code=0, stdout=output)
        return Pool("p%d" % number, "true", 0, {"pi1": job}, end_time=1)

    feeds = pool_feeds.PoolFeeds(1 << 30)
    for number in range(pool_feeds.ENDED_FEEDS + 10):
        feeds.follow(ended_pool(number, "x"))
    assert len(feeds.ended) == pool_feeds.ENDED_FEEDS and "p0" not in feeds.ended
    big = "y" * (pool_feeds.ENDED_BYTES // 3)
    for number in range(1000, 1004):
        feeds.follow(ended_pool(number, big))
    assert list(feeds.ended)[-2:] == ["p1002", "p1003"] and "p1000" not in feeds.ended
    # A follower of a pool whose log is gone gets it remade from the pool, the same each time.
    again = feeds.follow(ended_pool(0, "x"))
    assert again.log.generation == "end" and again.log.closed
    assert [kind for _, kind, _ in again.log.entries] == ["output", "job", "done"]


def test_a_quiet_stream_gets_a_keepalive_comment_and_a_closed_log_ends_it():
    import gevent

    from pcci.master.sse import stream
    log = EventLog()
    log.append("job", {"state": "running"})
    chunks = stream(log, (None, 0), lambda kind, data: (kind, data), keepalive=0.05)
    assert next(chunks).startswith(b"retry: ")
    assert b"event: job" in next(chunks)
    assert next(chunks) == b": keepalive\n\n"          # nothing happened for 50 ms
    gevent.spawn_later(0.01, log.append, "done", {})
    gevent.spawn_later(0.02, log.close)
    rest = b"".join(chunks)                            # ends once the log is closed
    assert b"event: done" in rest and b"id: %s-2" % log.generation.encode() in rest


def test_followers_sharing_frames_render_each_event_once_and_get_the_same_bytes():
    from pcci.master.sse import SharedFrames, stream
    log = EventLog()
    for number in range(3):
        log.append("worker", "pi%d" % number)
    log.append("worker", "gone")            # a worker the registry no longer has: left out
    log.close()
    renders = []

    def render(kind, name):
        renders.append(name)
        return None if name == "gone" else (kind, {"name": name, "stats": len(renders)})
    shared = SharedFrames(limit=4)
    followers = [stream(log, (None, 0), render, shared=shared) for _ in range(2)]
    heads = [next(follower) for follower in followers]          # both follow the log at once
    first, second = (head + b"".join(follower) for head, follower in zip(heads, followers))
    assert first == second and first.count(b"event: worker") == 3 and b"gone" not in first
    assert renders == ["pi0", "pi1", "pi2", "gone"]          # once each, for both followers
    resumed = b"".join(stream(log, (log.generation, 2), render, shared=shared))
    assert resumed.count(b"event: worker") == 1 and b'"name":"pi2"' in resumed
    assert shared.frames == {}              # its last follower left: the frames went with it
    for seq in range(10, 20):                # bounded: the oldest frames leave
        shared.get(seq, lambda: b"x")
    assert len(shared.frames) <= 4


def test_a_follower_paused_past_the_oldest_kept_event_is_told_of_the_gap():
    from pcci.master.sse import stream
    log = EventLog(keep=5)
    for number in range(3):
        log.append("worker", number)
    chunks = stream(log, (None, 0), lambda kind, data: (kind, data), snapshot=lambda: [("worker", "snap")])
    first = next(chunks) + next(chunks)
    assert first.count(b"event: worker") == 4 and b"reset" not in first     # the snapshot, then 3 events
    for number in range(3, 60):                 # the follower does not read: the ring moves on
        log.append("worker", number)
    log.close()
    rest = b"".join(chunks)
    assert rest.startswith(b"event: reset") and b"events 4 to %d were dropped" % (log.first_seq - 1) in rest
    after_reset = rest.split(b"event: reset", 1)[1]
    assert b'data: "snap"' in after_reset                                  # the snapshot again
    ids = [int(line.rsplit(b"-", 1)[1]) for line in rest.splitlines() if line.startswith(b"id: ")]
    assert ids == list(range(log.first_seq, 61))                            # then every event kept
    # A new follower of the moved-on ring has no gap to be told of: the snapshot, then what is kept.
    fresh = b"".join(stream(log, (None, 0), lambda kind, data: (kind, data), snapshot=lambda: [("worker", "s")]))
    assert b"reset" not in fresh and fresh.count(b"event: worker") == 1 + 60 - log.first_seq + 1
    resumed = b"".join(stream(log, (log.generation, 59), lambda kind, data: (kind, data),
                              snapshot=lambda: [("worker", "s")]))
    assert resumed.count(b"event: worker") == 1 and b"id: %s-60" % log.generation.encode() in resumed


def test_followers_write_the_same_bytes_in_bounded_writes_and_the_frames_go_when_they_leave():
    from pcci.master.sse import SEND_BYTES, SharedFrames, stream
    log = EventLog()
    log.append("output", "x" * (3 * SEND_BYTES))
    for number in range(200):
        log.append("job", {"n": number})
    log.close()
    shared = SharedFrames()
    renders = []

    def render(kind, data):
        renders.append(kind)
        return kind, data
    first, second = stream(log, (None, 0), render, shared=shared), stream(log, (None, 0), render, shared=shared)
    writes = [next(first), next(second), next(first)]
    assert shared.followers == 2 and shared.frames
    writes += list(first) + list(second)
    assert max(len(write) for write in writes) <= SEND_BYTES
    assert len(renders) == 201                                  # each event rendered once for both
    assert shared.followers == 0 and shared.frames == {} and shared.size == 0
