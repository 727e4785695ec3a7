"""Where children dial a relay (pure, pcci.master.relay_address): the worker's link address,
or the address it advertises where the master's relay_networks allow it."""

import ipaddress

from pcci import protocol
from pcci.master.relay_address import accepted

FINGERPRINT = "sha256:" + "ab" * 32


def hello_relay(**fields):
    """A hello's ``relay`` as the master reads it (protocol.relay_endpoint)."""
    return protocol.relay_endpoint({"relay": dict({"port": 7715, "fingerprint": FINGERPRINT}, **fields)})


def nets(*texts):
    return [ipaddress.ip_network(text) for text in texts]


def test_without_an_advertised_address_children_dial_the_link_address_at_the_listeners_port():
    assert accepted(hello_relay(), "10.0.0.11", []) == (
        {"host": "10.0.0.11", "port": 7715, "fingerprint": FINGERPRINT}, None)
    assert accepted(None, "10.0.0.11", []) == (None, None)


def test_by_default_an_advertised_address_may_only_change_the_port():
    endpoint, refused = accepted(hello_relay(host="10.0.0.11", port=17715), "10.0.0.11", [])
    assert endpoint == {"host": "10.0.0.11", "port": 17715, "fingerprint": FINGERPRINT} and refused is None
    # A dual-stack master sees an IPv4 worker as ::ffff:a.b.c.d: the same address.
    endpoint, refused = accepted(hello_relay(host="10.0.0.11"), "::ffff:10.0.0.11", [])
    assert endpoint["host"] == "10.0.0.11" and refused is None


def test_another_advertised_address_is_taken_only_inside_relay_networks():
    endpoint, refused = accepted(hello_relay(host="192.168.7.3"), "203.0.113.9", nets("192.168.7.0/24"))
    assert endpoint == {"host": "192.168.7.3", "port": 7715, "fingerprint": FINGERPRINT} and refused is None
    for networks in ([], nets("192.168.8.0/24", "fd00::/8")):
        endpoint, refused = accepted(hello_relay(host="192.168.7.3"), "203.0.113.9", networks)
        assert endpoint is None         # it serves no relays: no child is aimed at that address
        assert "192.168.7.3" in refused and "203.0.113.9" in refused and "relay_networks" in refused


def test_an_advertised_name_or_garbage_is_refused_and_a_malformed_host_is_no_endpoint():
    endpoint, refused = accepted(hello_relay(host="pi1.example.org"), "10.0.0.11", nets("0.0.0.0/0"))
    assert endpoint is None and "not an IP address" in refused
    assert hello_relay(host=7) is None and hello_relay(host="1" * 46) is None and hello_relay(host="") is None


def test_an_address_naming_each_childs_own_host_is_refused_whatever_relay_networks_say():
    """0.0.0.0 and :: dial the child's own host; so does loopback, unless the worker's link
    is on loopback too (every worker on one host, as in tests)."""
    everything = nets("0.0.0.0/0", "::/0")
    for host in ("0.0.0.0", "::ffff:0.0.0.0", "::", "127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"):
        endpoint, refused = accepted(hello_relay(host=host), "10.0.0.11", everything)
        assert endpoint is None and "names each child's own host" in refused, host
    endpoint, refused = accepted(hello_relay(host="127.0.0.2"), "127.0.0.1", nets("127.0.0.2/32"))
    assert endpoint["host"] == "127.0.0.2" and refused is None
    endpoint, refused = accepted(hello_relay(host="0.0.0.0"), "127.0.0.1", everything)
    assert endpoint is None and "names each child's own host" in refused


def test_a_refusal_names_a_few_of_relay_networks_however_long_the_list():
    """The line is written at each reconnect of a worker that keeps advertising outside:
    with 2,000 networks it was 40 KB each time."""
    many = [ipaddress.ip_network("10.%d.%d.0/24" % (n // 250, n % 250)) for n in range(2000)]
    _, refused = accepted(hello_relay(host="192.168.7.3"), "203.0.113.9", many)
    assert len(refused) < 300 and "10.0.0.0/24" in refused and "and 1996 more" in refused, refused


def test_a_dual_stack_masters_view_of_an_ipv4_link_is_dialed_as_ipv4():
    assert accepted(hello_relay(), "::ffff:10.0.0.11", [])[0]["host"] == "10.0.0.11"
    assert accepted(hello_relay(), "fd00::11", [])[0]["host"] == "fd00::11"
