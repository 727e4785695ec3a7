"""Where a request's body ends (pure): a head that two parsers could frame two ways is
refused; and a tokenless master binds loopback only, by an exact parse of api_host."""

import json

import pytest

from pcci import config
from pcci.master.api_server import api_host
from pcci.master.http_framing import bad_request, framing_problem


@pytest.mark.parametrize("lengths,encodings", [
    ([], []), (["12"], []), (["12", "12"], []), ([" 12 "], []), ([], ["chunked"]), ([], ["Chunked"]),
])
def test_one_framing_passes(lengths, encodings):
    assert framing_problem(lengths, encodings) is None


@pytest.mark.parametrize("lengths,encodings,why", [
    (["12"], ["chunked"], "both"),
    (["12", "13"], [], "two different"),
    (["+12"], [], "not a number"), (["1_2"], [], "not a number"), (["12, 12"], [], "not a number"),
    (["²"], [], "not a number"), ([""], [], "not a number"), (["1" * 19], [], "not a number"),
    ([], ["gzip, chunked"], "only a single"), ([], ["chunked", "chunked"], "only a single"),
    ([], ["chunked "], "only a single"), ([], ["identity"], "only a single"),
])
def test_two_framings_are_a_problem(lengths, encodings, why):
    assert why in framing_problem(lengths, encodings)


def test_the_refusal_is_a_json_400_that_closes_the_connection():
    head, _, body = bad_request("the request has both").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"\r\nConnection: close" in head
    assert b"\r\nContent-Length: %d" % len(body) in head
    assert json.loads(body) == {"error": {"code": "malformed_request", "message": "the request has both"}}


@pytest.mark.parametrize("host,bound", [
    ("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("::1", "::1"), ("localhost", "localhost"),
    ("127.0.0.1.evil.test", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("127.evil.test", "127.0.0.1"),
])
def test_a_tokenless_master_listens_on_loopback_only(host, bound):
    """Before, api_host '127.0.0.1.evil.test' passed for loopback and was bound as given."""
    settings = config.validate({"api_host": host}, config.MASTER_KEYS, "test")
    assert api_host(settings, []) == bound
