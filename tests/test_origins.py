"""The tokenless master's Host and Origin checks, as pure functions: exact parses, never a
test of how a string starts or ends."""

import pytest

from pcci.master.origins import HostPort, is_loopback_host, is_same_origin, parse_host, parse_origin


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.0.0.1:8080", "127.255.0.9:1", "localhost", "LOCALHOST:8080", "[::1]", "[::1]:8080",
    "::1", "[0:0::1]:80", "[::ffff:127.0.0.1]:8080", " 127.0.0.1 "])
def test_loopback_names_and_addresses_are_loopback(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", [
    "127.0.0.1.evil.test", "127.0.0.1.evil.test:8080", "127.evil.test", "127.1", "0127.0.0.1",
    "localhost.evil.test", "evil.localhost", "x.localhost:8080", "localhost.", "127.0.0.1:8080.evil.test",
    "127.0.0.1:8080@evil.test", "127.0.0.1 evil.test", "127.0.0.1\nevil.test", "[::1].evil.test",
    "[::1]evil", "[127.0.0.1]", "::2", "0.0.0.0", "10.0.0.1:8080", "127.0.0.1:0", "127.0.0.1:65536",
    "127.0.0.1:８０", "local\u212aost", "", "[::1", "::1]"])
def test_anything_that_only_looks_like_loopback_is_not(host):
    assert not is_loopback_host(host)


def test_a_host_header_parses_into_its_name_and_port():
    assert parse_host("[::1]:8080") == HostPort("::1", 8080)
    assert parse_host("LocalHost") == HostPort("localhost", None)
    assert parse_host("localhost:8080\n") == HostPort("localhost", 8080)    # strip(): the reader trims anyway
    assert parse_host("localhost:80:80") is None and parse_host("a/b") is None


@pytest.mark.parametrize("origin,scheme,host", [
    ("http://127.0.0.1:8080", "http", "127.0.0.1:8080"),
    ("http://localhost:9000", "http", "localhost:9000"),        # through an ssh -L tunnel
    ("http://127.0.0.1", "http", "127.0.0.1:80"),
    ("https://localhost", "https", "LOCALHOST:443"),
    ("http://[::1]:8080", "http", "[0::1]:8080"),
])
def test_a_request_from_its_own_origin_is_same_origin(origin, scheme, host):
    assert is_same_origin(origin, scheme, host)


@pytest.mark.parametrize("origin", [
    "http://127.0.0.1.evil.test:8080", "http://127.0.0.1:8081", "http://localhost:8080", "https://127.0.0.1:8080",
    "http://127.0.0.1", "http://127.0.0.1:8080/", "http://127.0.0.1:8080.evil.test",
    "http://user@127.0.0.1:8080", "null", "", "127.0.0.1:8080", "file://", "ftp://127.0.0.1:8080",
    "http://127.0.0.1:8080 http://evil.test"])
def test_any_other_origin_is_not(origin):
    assert not is_same_origin(origin, "http", "127.0.0.1:8080")


def test_an_origin_parses_only_when_it_is_scheme_host_and_port():
    assert parse_origin("HTTP://[::1]") == ("http", "::1", 80)
    assert parse_origin("https://localhost:8443") == ("https", "localhost", 8443)
    assert parse_origin("http://localhost:8443/x") is None
