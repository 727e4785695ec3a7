"""Relay tickets (pure): one parent's copy, one file, one child, until a time."""

from pcci import relay_ticket


def test_a_ticket_made_for_another_child_is_refused():
    """The ticket check itself (pure): another child, file, copy or a later time fails it."""
    key = relay_ticket.new_key()
    ticket = relay_ticket.make(key, "p/pi1", "ab" * 32, "pi2", 2000)
    assert relay_ticket.problem(key, "p/pi1", "ab" * 32, "pi2", 2000, ticket, now_ms=1000) is None
    assert "not made for this child" in relay_ticket.problem(key, "p/pi1", "ab" * 32, "pi3", 2000, ticket, 1000)
    assert "not made for this child" in relay_ticket.problem(key, "p/pi2", "ab" * 32, "pi2", 2000, ticket, 1000)
    assert "not made for this child" in relay_ticket.problem(key, "p/pi1", "cd" * 32, "pi2", 2000, ticket, 1000)
    assert "not made for this child" in relay_ticket.problem(key, "p/pi1", "ab" * 32, "pi2", 3000, ticket, 1000)
    assert "expired" in relay_ticket.problem(key, "p/pi1", "ab" * 32, "pi2", 2000, ticket, now_ms=2001)
