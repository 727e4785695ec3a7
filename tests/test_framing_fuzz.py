"""Property tests of the frame decoder: random and truncated input never crashes it or grows it."""

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from pcci.framing import HEADER, FrameDecoder, FrameError, encode  # noqa: E402

LIMIT = 4096
messages = st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=50)),
                           max_size=5).map(lambda d: dict(d, type="t"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=20))
def test_random_bytes_give_messages_or_a_frame_error_and_memory_stays_bounded(chunks):
    decoder = FrameDecoder(LIMIT)
    try:
        for chunk in chunks:
            for message in decoder.feed(chunk):
                assert isinstance(message, dict) and isinstance(message["type"], str)
            assert len(decoder._buffer) <= HEADER.size + LIMIT + 600  # memory stays bounded
    except FrameError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, min_size=1, max_size=8), st.data())
def test_any_split_of_valid_frames_decodes_to_the_same_messages(batch, data):
    stream = b"".join(encode(m) for m in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder, seen, start = FrameDecoder(LIMIT * 16), [], 0
    for cut in cuts + [len(stream)]:
        seen += decoder.feed(stream[start:cut])
        start = cut
    assert seen == batch


@settings(max_examples=200, deadline=None)
@given(messages, st.integers(min_value=1))
def test_a_truncated_frame_yields_nothing_and_waits(message, cut):
    frame = encode(message)
    decoder = FrameDecoder(LIMIT)
    assert decoder.feed(frame[:max(0, len(frame) - 1 - cut % len(frame))]) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.tuples(st.text(min_size=1, max_size=8), st.binary(max_size=40)),
                                        max_size=4))
def test_blob_payloads_decode_or_are_a_frame_error(garbage, blobs):
    from pcci.framing import decode_payload, encode_blob_payload
    # Random bytes behind the blob mark: a message or FrameError, nothing else.
    try:
        decode_payload(b"\x00" + garbage)
    except FrameError:
        pass
    # A well-made one comes back with each blob as its text (names that repeat are refused).
    payload = b"".join(encode_blob_payload({"type": "t"}, blobs))
    try:
        message = decode_payload(payload)
    except FrameError:
        assert len({name for name, _ in blobs}) < len(blobs) or "type" in {name for name, _ in blobs}
    else:
        assert message == dict({name: data.decode("utf-8", "replace") for name, data in blobs}, type="t")
