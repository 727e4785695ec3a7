"""One definition of an output offset (pcci.output_text), checked over random bytes cut at
random: whichever way a job's output travels (live pieces, the result filling in the
rest, a resend after a reset), a follower joins exactly the text of the whole output."""

import io
import json

from hypothesis import given, settings, strategies as st

from pcci.cli.follow import LinePrinter
from pcci.client.events import parse_events
from pcci.master.pool_feeds import EVENT_CHARS, PoolFeed, render_event
from pcci.master.sse import stream
from pcci.model import Job, Pool
from pcci.output_text import decode, whole_characters
from pcci.states import JobState

# Bytes that are often not UTF-8: Latin-1 letters, lone continuation and lead bytes, emoji.
PARTS = st.sampled_from([b"a", b"\n", b"\xe9", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\x80",
                         b"\xc3", b"\xf0\x9f", b"\xed\xa0\x80", b"\xff", b"ne 1\n"])
RAW = st.lists(PARTS, max_size=60).map(b"".join)
CUTS = st.lists(st.integers(1, 9), min_size=1, max_size=30)


def worker_pieces(raw, cuts, upto=None):
    """(byte offset, byte length, text) as the worker sends them (live_output._send_piece)."""
    pieces, start, upto = [], 0, len(raw) if upto is None else upto
    for size in cuts * (len(raw) + 1):
        if start >= upto:
            break
        chunk = raw[start:min(upto, start + size)]
        length = whole_characters(chunk, start + len(chunk) == len(raw))
        if length == 0:                         # a character cut: the worker takes all it has
            length = whole_characters(raw[start:upto], upto == len(raw))
            if length == 0:
                break                           # its last bytes are yet to come: the result has them
        pieces.append((start, length, decode(raw[start:start + length])))
        start += length
    return pieces


def followed(raw, cuts, live_upto):
    """What a follower prints of a job's stdout: live pieces up to ``live_upto`` bytes, then
    the result; the events go through the SSE wire form and the CLI's parser and printer."""
    job = Job("p1", "pi1", state=JobState.RUNNING)
    pool = Pool("p1", "x", 0, {"pi1": job})
    feed = PoolFeed(pool, limit=1 << 20)
    for offset, length, text in worker_pieces(raw, cuts, live_upto):
        feed.output("pi1", "stdout", offset, length, text)
    job.state, job.exit_code, job.stdout = JobState.SUCCEEDED, 0, decode(raw)
    feed.job_changed(job)
    feed.end(pool)
    wire = b"".join(stream(feed.log, (None, 0), render_event))
    out = io.StringIO()
    printer = LinePrinter(out, io.StringIO())
    events = [(kind, json.loads(data)) for _, kind, data in parse_events(io.BytesIO(wire).readlines())]
    for kind, data in events + events:          # everything twice: a resend after a reset
        if kind == "output":
            printer.output(data["worker"], data["stream"], data["offset"], data["text"])
    printer.job_ended("pi1")
    return out.getvalue(), events


@settings(max_examples=300, deadline=None)
@given(RAW, CUTS)
def test_worker_pieces_join_to_the_decoding_of_the_whole(raw, cuts):
    pieces = worker_pieces(raw, cuts)
    assert "".join(text for _, _, text in pieces) == decode(raw)
    assert sum(length for _, length, _ in pieces) == len(raw)


@settings(max_examples=300, deadline=None)
@given(RAW, CUTS, st.floats(0, 1))
def test_every_path_to_a_follower_joins_to_the_decoded_output(raw, cuts, live_share):
    printed, events = followed(raw, cuts, int(len(raw) * live_share))
    text, end = "", 0
    for kind, data in events:
        if kind == "output":
            assert data["offset"] == end            # a text offset: no gap, no overlap
            text += data["text"]
            end += len(data["text"])
    assert text == decode(raw)
    lines = decode(raw).split("\n")
    assert printed == "".join("pi1: %s\n" % line for line in (lines[:-1] if not lines[-1] else lines))


def test_the_result_is_cut_into_events_at_text_offsets():
    text = "\ufffd" * (EVENT_CHARS + 5)
    job = Job("p1", "pi1", state=JobState.SUCCEEDED, exit_code=0, stdout=text)
    feed = PoolFeed(Pool("p1", "x", 0, {"pi1": job}, end_time=1), limit=1 << 30)
    offsets = [render_event(kind, data)[1]["offset"] for _, kind, data in feed.log.entries if kind == "output"]
    assert offsets == [0, EVENT_CHARS]

