"""The notification SSRF guard (pcci.master.notify_allow, notify_send.pick_address) and the
notify field's rules (notify_rules): pure."""

import hashlib
import hmac
import ipaddress

import pytest

from pcci.errors import NotifyNotAllowed, OutOfRange, WrongType
from pcci.master.notify_allow import UrlRefused, address_refusal, allow_list, parse_url, refusal_at_submit
from pcci.master.notify_rules import notify_list, retry_delay, signature
from pcci.master.notify_send import AttemptFailed, pick_address

ALLOW = allow_list(["https://hooks.example/services/", "10.0.5.0/24"])
# Without a network entry a name off the prefixes is refused at submit (with one, the
# address it resolves to is checked when it is sent: test_the_address_connected_to_is_the_one_checked).
PREFIXES = allow_list(["https://hooks.example/services/"])


@pytest.mark.parametrize("url", [
    "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://0x7f000001/", "http://127.1/",
    "http://allowed@127.0.0.1/", "https://hooks.example@127.0.0.1/services/", "http://[fe80::1%25eth0]/",
    "https://hooks.example/services/../admin", "https://hooks.example/services/%2e%2e/admin",
    "https://hooks.example\\@127.0.0.1/", "ftp://hooks.example/", "https://hooks.example/services/#x",
    "https://hooks.exa mple/", "https://hooks.example:0/", "file:///etc/passwd", "https:///services/",
])
def test_ambiguous_or_malformed_urls_are_refused(url):
    with pytest.raises(UrlRefused):
        parse_url(url)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/",
    "http://[::1]/", "http://0.0.0.0/", "http://[fe80::1]/", "http://224.0.0.1/",
    "http://hooks.example/services/x",                 # the scheme differs
    "https://hooks.example:8443/services/x",           # the port differs
    "https://hooks.example/services-evil/x",           # a string prefix, not a segment prefix
    "https://hooks.example/servicesx",
    "https://hooks.example.evil.com/services/",         # another host
    "https://evil.com/https://hooks.example/services/",
    "http://10.0.6.1/",                                 # outside the network entry
])
def test_destinations_off_the_list_are_refused_at_submit(url):
    assert refusal_at_submit(parse_url(url), PREFIXES) is not None
    if parse_url(url).address is not None:
        assert refusal_at_submit(parse_url(url), ALLOW) is not None


@pytest.mark.parametrize("url", [
    "https://hooks.example/services/T0/B1", "https://HOOKS.example:443/services", "http://10.0.5.9:9000/x",
    "https://anything.internal/hook",                  # a name: its address is checked when it is sent
])
def test_destinations_on_the_list_are_accepted_at_submit(url):
    assert refusal_at_submit(parse_url(url), ALLOW) is None


def test_an_empty_allow_list_refuses_every_notification():
    refusal = refusal_at_submit(parse_url("https://hooks.example/services/"), allow_list([]))
    assert "notify_allow is empty" in refusal


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "::1", "fe80::1",
                                     "0.0.0.0", "0.1.2.3", "239.1.1.1", "255.255.255.255", "::127.0.0.1"])
def test_a_listed_name_resolving_to_a_special_address_is_refused(address):
    url = parse_url("https://hooks.example/services/x")
    assert address_refusal(url, ipaddress.ip_address(address), ALLOW) is not None


def test_a_listed_name_may_resolve_to_an_ordinary_address():
    url = parse_url("https://hooks.example/services/x")
    assert address_refusal(url, ipaddress.ip_address("192.0.2.10"), ALLOW) is None
    assert address_refusal(url, ipaddress.ip_address("10.9.9.9"), ALLOW) is None


def test_only_a_network_entry_allows_loopback_and_then_any_name_resolving_into_it():
    allow = allow_list(["127.0.0.0/8"])
    url = parse_url("http://localhost:8000/hook")
    assert address_refusal(url, ipaddress.ip_address("127.0.0.1"), allow) is None
    assert address_refusal(url, ipaddress.ip_address("::ffff:127.0.0.2"), allow) is None   # mapped: checked as IPv4
    assert address_refusal(url, ipaddress.ip_address("::1"), allow) is not None
    assert address_refusal(url, ipaddress.ip_address("169.254.169.254"), allow) is not None


def test_the_address_connected_to_is_the_one_checked():
    evil = parse_url("https://evil.example/")
    with pytest.raises(AttemptFailed, match="10.0.5.0/24|no network"):
        pick_address(evil, ALLOW, lambda host, port: [ipaddress.ip_address("10.0.6.1")])
    assert str(pick_address(evil, ALLOW, lambda host, port: [ipaddress.ip_address("10.0.5.1")])) == "10.0.5.1"
    url = parse_url("https://hooks.example/services/x")
    answers = {"hooks.example": [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("192.0.2.7")]}
    assert str(pick_address(url, ALLOW, lambda host, port: answers[host])) == "192.0.2.7"
    with pytest.raises(AttemptFailed, match="loopback"):
        pick_address(url, ALLOW, lambda host, port: [ipaddress.ip_address("127.0.0.1")])


@pytest.mark.parametrize("entry", ["hooks.example", "10.0.5.1/24", "https://hooks.example/?q=1", "ftp://x/", 7])
def test_bad_allow_entries_are_named(entry):
    with pytest.raises(ValueError, match="hooks|10.0.5.1|ftp|7"):
        allow_list([entry])


def test_the_notify_field_is_bounded_and_checked():
    good = {"url": "https://hooks.example/services/a", "on": ["failed", "done"], "secret": "k" * 32}
    (checked,) = notify_list([good], ALLOW)
    assert checked.on == ("failed", "done") and checked.secret == "k" * 32
    assert notify_list([{"url": good["url"]}], ALLOW)[0].on == ("failed",)
    with pytest.raises(OutOfRange):
        notify_list([good] * 5, ALLOW)
    with pytest.raises(WrongType):
        notify_list([dict(good, on=["sometimes"])], ALLOW)
    with pytest.raises(WrongType):
        notify_list([dict(good, secret="")], ALLOW)
    with pytest.raises(WrongType):
        notify_list([dict(good, extra=1)], ALLOW)
    with pytest.raises(NotifyNotAllowed, match="notify\\[0\\].url"):
        notify_list([dict(good, url="http://127.0.0.1/")], ALLOW)


def test_the_signature_covers_the_timestamp_and_the_body():
    body = b'{"event":"failed"}'
    expected = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("secret", 1700000000, body) == "sha256=" + expected
    assert signature("secret", 1700000001, body) != signature("secret", 1700000000, body)


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap():
    assert [retry_delay(n, 2.0, 1.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert retry_delay(3, 2.0, 0.5) == 4.0
    assert retry_delay(40, 2.0, 1.0) == 600.0
