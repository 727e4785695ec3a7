"""A schedule's authority, pure (pcci/master/schedule_spec.py): it fires for the token
that last changed it only while that token is in use with the scope the schedule needs."""

from pcci.api_tokens import make_token
from pcci.master.schedule_spec import authority_problem, needed_scope

TOKENS = [make_token("a" * 20, "alice", "operate"), make_token("b" * 20, "bob", "read"),
          make_token("c" * 20, "carol", "admin")]


def test_a_schedule_fires_for_a_token_still_in_use_with_its_scope():
    assert authority_problem("alice", {"cmd": "true"}, TOKENS) is None
    assert authority_problem("carol", {"cmd": "true", "user": "root"}, TOKENS) is None
    assert authority_problem("local", {"cmd": "true", "user": "root"}, []) is None    # a master without tokens


def test_a_revoked_or_lowered_token_s_schedule_is_refused_saying_why():
    assert "no longer in api_tokens" in authority_problem("mallory", {"cmd": "true"}, TOKENS)
    assert "now has scope read" in authority_problem("bob", {"cmd": "true"}, TOKENS)
    assert "needs admin" in authority_problem("alice", {"cmd": "true", "user": "root"}, TOKENS)
    assert needed_scope({"user": "root"}) == "admin" and needed_scope({"user": "pi"}) == "operate"
