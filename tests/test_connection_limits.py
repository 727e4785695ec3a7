"""The connection caps' decisions (pure): who gets in, who gives way, who is refused."""

from pcci.connection_limits import ConnectionLimits, address_prefix


def fill(limits, addresses, each):
    return [limits.admit(a).slot for a in addresses for _ in range(each)]


def test_prefixes_are_a_24_for_ipv4_and_a_64_for_ipv6():
    assert address_prefix("192.0.2.77") == "192.0.2.0/24"
    assert address_prefix("::ffff:192.0.2.77") == "192.0.2.0/24"
    assert address_prefix("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_prefix("not an address") == "not an address"


def test_an_address_over_its_cap_displaces_its_own_oldest_idle_connection():
    limits = ConnectionLimits(total=100, per_address=2)
    first, second = fill(limits, ["10.0.0.1"], 2)
    admission = limits.admit("10.0.0.1")
    assert admission.slot is not None and admission.evict is first
    limits.set_idle(second, False)
    limits.set_idle(admission.slot, False)
    assert limits.admit("10.0.0.1").slot is None          # nothing idle to give way: refused


def test_a_network_over_its_cap_cannot_take_more_but_a_quieter_address_in_it_can():
    limits = ConnectionLimits(total=100, per_address=64, per_prefix=8)
    fill(limits, ["10.0.0.1"], 8)
    assert limits.admit("10.0.0.1").slot is None
    admission = limits.admit("10.0.0.2")
    assert admission.slot is not None and admission.evict.address == "10.0.0.1"
    assert limits.admit("10.0.1.1").slot is not None       # another /24 is not affected
    assert limits.by_prefix["10.0.0.0/24"] == 8


def test_seventeen_busy_networks_cannot_keep_a_newcomer_out():
    """The issue's flood: 17 addresses x 64 idle connections, each address in its own /24."""
    limits = ConnectionLimits(total=1000, per_address=64, per_prefix=256)
    attackers = ["127.0.%d.1" % (10 + n) for n in range(17)]
    admitted = sum(limits.admit(a).slot is not None for a in attackers for _ in range(64))
    assert admitted > 1000 and limits.count == 1000     # the late ones displaced earlier ones
    for n in range(50):             # newcomers from quieter networks each get in
        admission = limits.admit("192.0.2.%d" % (1 + n))
        assert admission.slot is not None and admission.evict.address in attackers
    # The attacker's next connection, from its busiest network, is refused.
    busiest = max(attackers, key=lambda a: len(limits.by_address[a]))
    assert limits.admit(busiest).slot is None
    assert limits.count == 1000


def test_a_connection_being_answered_is_never_displaced():
    limits = ConnectionLimits(total=2, per_address=64)
    for slot in fill(limits, ["10.0.0.1"], 2):
        limits.set_idle(slot, False)
    assert limits.admit("10.0.9.1").slot is None


def test_known_addresses_have_a_reserve_strangers_cannot_fill_or_take():
    limits = ConnectionLimits(total=4, per_address=64, per_prefix=4, reserve=3)
    fill(limits, ["10.0.%d.1" % n for n in range(4)], 1)
    known = [limits.admit("10.9.0.%d" % n, known=True) for n in range(3)]
    assert all(a.slot is not None and a.evict is None for a in known)
    assert limits.admit("10.9.0.9", known=True).evict is not None     # reserve full: it competes as anyone
    for n in range(20):      # strangers displace strangers only
        admission = limits.admit("10.1.%d.1" % n)
        assert admission.evict is None or not admission.evict.known


def test_a_known_address_is_not_held_to_the_network_cap():
    limits = ConnectionLimits(total=1000, per_address=64, per_prefix=4, reserve=100)
    assert all(limits.admit("10.0.0.%d" % n, known=True).slot for n in range(1, 51))


def test_release_is_idempotent_and_an_evicted_slot_is_already_released():
    limits = ConnectionLimits(total=1, per_address=1)
    first = limits.admit("10.0.0.1").slot
    second = limits.admit("10.0.0.1")
    assert second.evict is first and first.evicted
    limits.release(first)
    limits.release(second.slot)
    limits.release(second.slot)
    assert limits.count == 0 and not limits.by_address and not limits.by_prefix
