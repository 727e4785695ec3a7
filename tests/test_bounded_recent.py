"""BoundedRecent: the pool core's recent pools and the ended event feeds, within their budgets."""

from pcci.master.bounded_recent import BoundedRecent


def test_the_oldest_go_first_when_the_count_or_the_bytes_run_over():
    recent = BoundedRecent(max_count=3, max_bytes=100, size=len)
    for key in "abcd":
        recent.add(key, "x" * 10)
    assert list(recent) == ["b", "c", "d"] and recent.bytes == 30
    recent.add("e", "y" * 81)                   # 111 bytes: b and c give way
    assert list(recent) == ["d", "e"] and recent.bytes == 91
    assert recent.get("e") == "y" * 81 and recent.get("b") is None and "d" in recent


def test_one_item_over_the_budget_is_dropped_unless_the_newest_is_kept():
    dropping = BoundedRecent(max_count=10, max_bytes=5, size=len)
    dropping.add("big", "z" * 6)
    assert len(dropping) == 0 and dropping.bytes == 0
    keeping = BoundedRecent(max_count=10, max_bytes=5, size=len, min_kept=1)
    keeping.add("small", "s")
    keeping.add("big", "z" * 6)
    assert list(keeping) == ["big"] and keeping.bytes == 6


def test_popping_and_clearing_give_the_bytes_back_and_adding_again_counts_once():
    recent = BoundedRecent(max_count=10, max_bytes=100, size=len)
    recent.add("a", "aaaa")
    recent.add("a", "aa")
    assert recent.bytes == 2 and recent.values() == ["aa"]
    assert recent.pop("a") == "aa" and recent.pop("a") is None and recent.bytes == 0
    recent.add("b", "bbb")
    recent.clear()
    assert len(recent) == 0 and recent.bytes == 0
