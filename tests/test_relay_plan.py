"""The tree a relayed copy goes through (pure): who pulls from whom."""

from pcci.master.relay_plan import parents


def depth(plan, node):
    steps = 0
    while node in plan:
        node, steps = plan[node], steps + 1
    return steps


def test_twenty_workers_at_fan_out_two_are_four_levels_below_the_master_feeding_two():
    names = ["n%d" % n for n in range(1, 21)]
    plan = parents(names, set(names), set(names), 2)
    roots = [name for name in names if name not in plan]
    assert roots == ["n1", "n2"]
    assert max(list(plan.values()).count(parent) for parent in set(plan.values())) == 2
    assert max(depth(plan, name) for name in names) == 3       # master -> roots -> ... : 4 hops


def test_workers_without_a_listener_are_leaves_and_those_no_parent_can_take_come_from_the_master():
    names = ["a", "b", "c", "d", "e", "f", "g"]
    serving = {"a", "b"}
    plan = parents(names, serving, set(names), 2)
    assert set(plan.values()) <= serving
    # a and b are roots (fed by the master); each can take two: c, d under a; e, f under b.
    assert plan == {"c": "a", "d": "a", "e": "b", "f": "b"}
    assert "g" not in plan


def test_no_tree_for_one_worker_fan_out_zero_or_workers_that_cannot_relay():
    assert parents(["a"], {"a"}, {"a"}, 2) == {}
    assert parents(["a", "b", "c"], {"a", "b", "c"}, {"a", "b", "c"}, 0) == {}
    assert parents(["a", "b", "c", "old"], {"a"}, {"a", "b", "c"}, 1) == {"b": "a"}
    assert parents(["a", "b", "c", "d"], {"a", "b", "c", "d"}, {"a", "b", "c", "d"}, 4) == {}


def test_two_workers_make_a_chain_from_the_one_that_can_serve():
    # Below MIN_TREE_WORKERS the master feeds one, whatever the fan-out, and the other pulls from it.
    for fanout in (1, 2, 16):
        assert parents(["a", "b"], {"a", "b"}, {"a", "b"}, fanout) == {"b": "a"}
    assert parents(["leaf", "server"], {"server"}, {"leaf", "server"}, 2) == {"leaf": "server"}
    # Of three targets, two that can relay: a chain, the third (an older worker) from the master.
    assert parents(["old", "a", "b"], {"a"}, {"a", "b"}, 2) == {"b": "a"}
    # Two leaves, or no fan-out at all: the master feeds both.
    assert parents(["a", "b"], set(), {"a", "b"}, 2) == {}
    assert parents(["a", "b"], {"a", "b"}, {"a", "b"}, 0) == {}
    assert parents(["a", "b"], {"a", "b"}, {"a", "b"}, 2, chain=False) == {}
    # A tree does not depend on the file's size.
    assert parents(["a", "b", "c"], {"a", "b", "c"}, {"a", "b", "c"}, 1, chain=False) == {"b": "a", "c": "b"}


def test_a_relay_below_the_floor_is_too_slow_and_one_near_the_end_is_not():
    from pcci.worker.relay_pull import too_slow_problem
    assert too_slow_problem(5, 1024 * 1024, 15, floor=4096) == "the relay sent 5 bytes in 15 s (at least 4096 expected)"
    assert too_slow_problem(4096, 1024 * 1024, 15, floor=4096) is None
    assert too_slow_problem(100, 100, 15, floor=4096) is None       # the last bytes of the file


class Session:
    """What relay_plan reads of a connected worker's session (plain values)."""

    def __init__(self, address, relay_host=None):
        from pcci import protocol
        self.address, self.features = address, frozenset([protocol.RELAY])
        self.relay = None if relay_host is None else {"host": relay_host, "port": 7715, "fingerprint": "sha256:ab"}


def streamed_copy(relay=True, size=10):
    from pcci.model import CopySpec, Pool
    return Pool("p1", "copy to /srv/x", 0, {}, copy=CopySpec("/srv/x", "", size, "ab" * 32, blob="ab" * 32,
                                                             relay=relay))


def test_children_dial_the_parents_accepted_address_and_a_direct_copy_makes_no_tree():
    from pcci.master.relay_plan import copy_fields
    sessions = {"a": Session("203.0.113.1", "192.168.7.1"), "b": Session("203.0.113.2", "192.168.7.2"),
                "c": Session("203.0.113.3")}
    dispatch = [(name, "p1/" + name) for name in ("a", "b", "c")]
    fields = copy_fields(streamed_copy(), dispatch, sessions.get, 1, now_ms=0)
    assert (fields["b"]["relayFrom"]["host"], fields["c"]["relayFrom"]["host"]) == ("192.168.7.1", "192.168.7.2")
    # b may dial a from its link's address or from its own address on the relays' network.
    assert fields["a"]["relayChildren"] == ["192.168.7.2", "203.0.113.2"]
    assert copy_fields(streamed_copy(relay=False), dispatch, sessions.get, 1, now_ms=0) == {}


def test_a_worker_on_the_masters_host_parents_only_children_on_that_host():
    """A worker whose link comes from 127.0.0.1 (it runs beside the master) is reached at a
    loopback address: a child on another host would dial its own loopback. With any such
    child it is a leaf; when every worker is on the master's host, it may be a parent."""
    from pcci.master.relay_plan import copy_fields
    sessions = {"local": Session("127.0.0.1", "127.0.0.1"), "pi1": Session("10.0.0.1", "10.0.0.1"),
                "pi2": Session("10.0.0.2", "10.0.0.2"), "pi3": Session("10.0.0.3", "10.0.0.3")}
    dispatch = [(name, "p1/" + name) for name in ("local", "pi1", "pi2", "pi3")]
    fields = copy_fields(streamed_copy(), dispatch, sessions.get, 1, now_ms=0)
    dialed = {name: entry["relayFrom"]["host"] for name, entry in fields.items() if "relayFrom" in entry}
    assert "127.0.0.1" not in dialed.values(), dialed
    assert "relayKey" not in fields.get("local", {}) and dialed.get("local", "").startswith("10.0.0."), fields
    on_one_host = {name: Session("127.0.0.1", "127.0.0.%d" % number) for number, name in enumerate(("a", "b", "c"), 1)}
    fields = copy_fields(streamed_copy(), [(name, "p1/" + name) for name in on_one_host], on_one_host.get, 1, now_ms=0)
    assert fields["b"]["relayFrom"]["host"] == "127.0.0.1" and "relayKey" in fields["a"], fields


def test_a_large_copy_to_two_workers_gives_the_parent_a_key_and_the_child_a_ticket_to_it():
    from pcci.master.relay_plan import MIN_CHAIN_BYTES, copy_fields
    sessions = {"a": Session("203.0.113.1", "192.168.7.1"), "b": Session("203.0.113.2")}
    dispatch = [("a", "p1/a"), ("b", "p1/b")]
    # A smaller file comes from the master to both: a chain's start-up would cost more than it saves.
    assert copy_fields(streamed_copy(size=MIN_CHAIN_BYTES - 1), dispatch, sessions.get, 2, now_ms=0) == {}
    fields = copy_fields(streamed_copy(size=MIN_CHAIN_BYTES), dispatch, sessions.get, 2, now_ms=0)
    assert set(fields) == {"a", "b"} and "relayKey" in fields["a"] and "relayFrom" not in fields["a"]
    assert fields["b"]["relayFrom"]["parent"] == "a" and fields["b"]["relayFrom"]["job"] == "p1/a"
    assert fields["a"]["relayChildren"] == ["203.0.113.2"]
