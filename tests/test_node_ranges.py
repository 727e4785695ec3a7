"""pcci.node_ranges: numbered names folded as ClusterShell folds them, without it."""

import pytest
from hypothesis import given, settings, strategies as st

from pcci.node_ranges import fold_numbered

NodeSet = pytest.importorskip("ClusterShell.NodeSet").NodeSet


def test_numbered_names_fold_into_ranges():
    assert fold_numbered(["n%d" % n for n in range(1, 21)]) == "n[1-20]"
    assert fold_numbered(["pi10", "pi2", "pi3", "pi5", "pi2"]) == "pi[2-3,5,10]"
    assert fold_numbered(["web1", "web1"]) == "web1"


@pytest.mark.parametrize("names", [["n01", "n02"], ["n1", "m1"], ["web", "n1"], ["n1a", "n2a"], ["1", "2"],
                                   ["n[1]", "n2"], ["rack1-n1", "rack2-n1"], []])
def test_what_is_not_one_prefix_and_a_plain_number_is_left_to_clustershell(names):
    assert fold_numbered(names) is None


@settings(max_examples=200, deadline=None)
@given(prefix=st.sampled_from(["n", "pi", "web-", "rack1-n", "a.b_c"]),
       numbers=st.lists(st.integers(0, 300), min_size=2, max_size=40),
       noise=st.lists(st.sampled_from(["n01", "x1", "pi", "n1b"]), max_size=1))
def test_the_fold_is_clustershells_whenever_it_answers(prefix, numbers, noise):
    names = ["%s%d" % (prefix, number) for number in numbers] + noise
    folded = fold_numbered(names)
    if not noise:
        assert folded is not None
    if folded is not None:
        assert folded == str(NodeSet.fromlist(names))
