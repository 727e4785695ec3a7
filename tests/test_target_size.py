"""The size of a target expression, counted from its text (pure): equal to what ClusterShell
expands when each bracket's ranges are disjoint, an upper bound otherwise; huge, nested,
overflowing and malformed expressions refused before anything is expanded; groups counted
with the expression that names them; repeated terms looked up once."""

import random

import pytest
from ClusterShell.NodeSet import RESOLVER_NOGROUP, NodeSet

from pcci.target_size import MAX_RANGES, TargetError, TargetTooLarge, term_size
from pcci.targets import Cluster, parse, resolve, scan

LIMIT = 20000


def expanded(expression):
    return set(NodeSet(expression, resolver=RESOLVER_NOGROUP))


def counted(expression):
    return sum(term.adds for term in scan(expression))


def random_bracket(rng, disjoint):
    elements, low = [], rng.randint(0, 5)
    for _ in range(rng.randint(1, 3)):
        high, step = low + rng.randint(0, 9), rng.choice([1, 1, 2, 3])
        elements.append("%d-%d/%d" % (low, high, step) if step > 1 else "%d-%d" % (low, high))
        # Disjoint: the next element starts past this one; otherwise anywhere, overlaps allowed.
        low = high + 1 + rng.randint(0, 3) if disjoint else rng.randint(0, 12)
    return "[%s]" % ",".join(elements)


def random_expression(rng, disjoint):
    terms = []
    for index in range(rng.randint(1, 3)):
        # Disjoint terms: a distinct prefix each; otherwise they may repeat and overlap.
        prefix = "t" + "abc"[index] if disjoint else rng.choice(["a", "b"])
        brackets = [random_bracket(rng, disjoint) for _ in range(rng.randint(1, 3))]
        terms.append(prefix + rng.choice(["-", "x"]).join(brackets))
    return ",".join(terms)


def test_the_count_is_exact_for_disjoint_ranges_nested_ones_included():
    rng = random.Random(24)
    for _ in range(300):
        expression = random_expression(rng, disjoint=True)
        assert counted(expression) == len(expanded(expression)), expression


def test_the_count_is_an_upper_bound_when_ranges_or_terms_overlap():
    rng = random.Random(42)
    for _ in range(300):
        expression = random_expression(rng, disjoint=False)
        assert counted(expression) >= len(expanded(expression)), expression


def test_ranges_in_one_name_multiply_and_terms_add():
    assert counted("r[1-9]n[1-9999]") == 9 * 9999
    assert counted("n[01-10/3],web,n[20-29]") == 4 + 1 + 10
    assert counted(",".join(["n[1-20000]"] * 400)) == 400 * 20000


def test_digits_before_a_bracket_join_only_numbers_of_one_width():
    for expression in ("n1[05-12]", "rack1[1-4]n[1-3]", "n1[1-2]-[1-3]2", "n[1-12]0"):
        assert counted(expression) == len(expanded(expression)), expression
    for expression in ("n1[5-12]", "n9[1-20000]", "n1[5-9,10-12]"):
        with pytest.raises(TargetError, match="same width"):
            parse(expression, LIMIT)


def test_what_an_operator_removes_counts_as_excluded():
    assert term_size("n[1-10]!n[3-4]", excluded=False) == (10, 2)
    assert term_size("n[1-10]&n[5-20]", excluded=False) == (26, 0)
    assert term_size("n[1-10]!n3", excluded=True) == (0, 11)


@pytest.mark.parametrize("expression", [
    "n[1-25000000]",
    ",".join(["n[1-20000]"] * 400),
    "r[1-9]n[1-9999]",
    "n[1-2]-[1-20000]",
])
def test_an_expression_over_the_limit_is_refused_as_too_large(expression):
    with pytest.raises(TargetTooLarge, match="stands for up to"):
        parse(expression, LIMIT)


def test_a_pool_sized_target_is_still_accepted():
    terms = parse("n[1-19999],web", LIMIT)
    assert sum(term.adds for term in terms) == LIMIT
    assert len(resolve(terms, Cluster(list, dict, {}), LIMIT)) == LIMIT


@pytest.mark.parametrize("expression, says", [
    ("n[0-9999999999999999999999]", "more than 18 digits"),          # ClusterShell: AssertionError
    ("n[1-2]" * 200, "more than %d ranges" % MAX_RANGES),            # ClusterShell: OverflowError
    ("n[1-2][3-4]", "need text between them"),
    ("n[1-3", "not closed"),
    ("n1-3]", "not opened"),
    ("n[[1-2]]", "inside a bracket"),
    ("n[5-1]", "must not pass"),
    ("n[1-9/0]", "must not pass"),
    ("n[1-010]", "same width"),
    ("n[-3]", "is not a range"),
    ("n[]", "is not a range"),
    ("n[1-3]!", "nothing on one side"),
    ("n[1-3]@rack", "'@' names a group"),
    ("x" * 250 + "[1-100000]", "at most 255"),
    ("x" * 256, "at most 255"),
])
def test_syntax_outside_the_measured_grammar_is_a_target_error(expression, says):
    with pytest.raises(TargetError, match=says) as raised:
        parse(expression, LIMIT)
    assert not isinstance(raised.value, TargetTooLarge)


def test_excluded_names_have_their_own_limit():
    parse("*,!n[1-20000]", LIMIT)
    with pytest.raises(TargetError, match="excludes up to 20001"):
        parse("*,!n[1-20000],!web", LIMIT)


def test_groups_count_with_the_expression_that_names_them_before_expansion():
    groups = {"rack": "n[1-10000]", "twice": "@rack,@rack", "deep": "@twice,@twice,@twice",
              "loop": "@loop"}
    cluster = Cluster(list, dict, groups)
    for expression in ("@twice,web", "@deep", ",".join(["@rack"] * 3)):
        with pytest.raises(TargetTooLarge):
            resolve(parse(expression, LIMIT), cluster, LIMIT)
    with pytest.raises(TargetError, match="nest more than"):
        resolve(parse("@loop", LIMIT), cluster, LIMIT)
    assert len(resolve(parse("@twice", LIMIT), cluster, LIMIT)) == 10000


def test_each_label_selector_and_star_is_looked_up_once_however_often_repeated():
    lookups = []

    def labels():
        lookups.append("labels")
        return {"pi%d" % n: {"model": "pi4" if n % 2 else "pi3"} for n in range(1, 1001)}

    def online():
        lookups.append("online")
        return ["pi1", "pi2"]

    expression = ",".join(["model=pi4", "model=pi3", "*"] * 500)
    names = resolve(parse(expression, LIMIT), Cluster(online, labels, {}), LIMIT)
    assert len(names) == 1000 and sorted(lookups) == ["labels", "online"]
