"""How many names a target term stands for, computed from its text alone (pure).

A range is never expanded to be measured: ClusterShell's RangeSet stores every member, so
``n[1-25000000]`` costs gigabytes before any limit could look at its length. Here the
text is read once, left to right, in time linear in its length, and the count is
arithmetic on the bounds::

    size(bracket)  = sum over its elements lo-hi/step of (hi - lo) // step + 1
    size(name)     = product over its brackets          (r[1-9]n[1-9999] is 9 * 9999)
    size(term)     = sum over its NodeSet operands       (a!b and a&b expand both a and b)

The count is exact when the elements of each bracket are disjoint and a term has no
operator; otherwise it is an upper bound on the names, and exactly the number of names
ClusterShell builds on the way. Only the grammar this module can measure is accepted,
so nothing reaches ClusterShell that it cannot count first: decimal bounds of at most
``MAX_BOUND_DIGITS`` digits, at most ``MAX_RANGES`` brackets in one name, names of at
most ``MAX_NAME_LENGTH`` characters, no ``@`` (a group is a term of its own), and digits
right before a bracket only when its numbers share one width (ClusterShell would read
``n1[5-12]`` as the 98 names n15..n112, and ``n9[1-20000]`` as 919,910).
"""

import collections
import re

# A worker's name is at most 255 characters (worker_port refuses longer ones): a longer
# name can select no worker, and its length would multiply the memory a range costs.
MAX_NAME_LENGTH = 255
# 18 digits keep a bound below 2**63 (ClusterShell fails past that, OverflowError).
MAX_BOUND_DIGITS = 18
# clush users write r[1-4]c[1-8]n[1-32]; more dimensions than this are a mistake or an attack.
MAX_RANGES = 8
OPERATORS = "!&^"
DIGITS = "0123456789"
ELEMENT = re.compile(r"^\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*(?:/\s*([0-9]+)\s*)?)?$")


class TargetError(ValueError):
    """A malformed expression; the message points at the term and where it starts."""


class TargetTooLarge(TargetError):
    """A well-formed expression that stands for more workers than a pool may have."""


# One operand of a term, measured: ``operator`` "" for the first, else the NodeSet operator
# before it; ``size`` how many names it stands for; ``longest`` the length of its longest
# name. (collections', not typing's NamedTuple: a worker loads this module and typing costs 1 MB.)
Operand = collections.namedtuple("Operand", "operator size longest")


def term_operands(body: str) -> "list[Operand]":
    """The operands of one term's body (without its leading ``!``), each measured;
    TargetError for anything outside the grammar."""
    operands, start, depth, operator = [], 0, 0, ""
    for index, char in enumerate(body + "!"):
        if char == "[":
            if depth:
                raise TargetError("a bracket opens inside a bracket")
            depth = 1
        elif char == "]":
            if not depth:
                raise TargetError("a bracket closes that was not opened")
            depth = 0
        elif char in OPERATORS and not depth:
            operands.append(Operand(operator, *_measure_name(body[start:index])))
            operator, start = char, index + 1
    if depth:
        raise TargetError("a bracket is not closed")
    return operands


def _measure_name(text):
    """(size, longest name) of one operand: literal text and bracketed ranges."""
    if not text:
        raise TargetError("an operator (! & ^) has nothing on one side")
    if "@" in text:
        raise TargetError("'@' names a group only at the start of a term")
    size, length, ranges, position = 1, 0, 0, 0
    while True:
        opening = text.find("[", position)
        if opening < 0:
            length += len(text) - position
            break
        if ranges and opening == position:
            raise TargetError("two ranges in a name need text between them: n[1-2]-[1-2], not n[1-2][1-2]")
        closing = text.index("]", opening)       # term_operands saw every bracket closed
        ranges += 1
        if ranges > MAX_RANGES:
            raise TargetError("a name has more than %d ranges" % MAX_RANGES)
        # ClusterShell joins digits before a bracket to each bound of its merged runs: n1[5-9,10-12]
        # is read as n15..n112, 98 names where 8 were written. Only same-width numbers join right.
        joined = opening > 0 and text[opening - 1] in DIGITS
        count, width = _measure_bracket(text[opening + 1:closing], joined)
        size *= count
        length += opening - position + width
        position = closing + 1
    if length > MAX_NAME_LENGTH:
        raise TargetError("a name would be %d characters; a worker's name has at most %d"
                          % (length, MAX_NAME_LENGTH))
    return size, length


def _measure_bracket(inside, joined=False):
    """(members, widest member) of the text between ``[`` and ``]``; ``joined``: digits
    come before it, so every number in it must have the same width."""
    count = width = 0
    widths = set()
    for element in inside.split(","):
        match = ELEMENT.match(element)
        if not match:
            raise TargetError("%r is not a range: write N, LOW-HIGH or LOW-HIGH/STEP" % element.strip()[:40])
        low, high, step = match.group(1), match.group(2) or match.group(1), match.group(3) or "1"
        if max(len(low), len(high), len(step)) > MAX_BOUND_DIGITS:
            raise TargetError("a range bound has more than %d digits" % MAX_BOUND_DIGITS)
        if (_padded(low) or _padded(high)) and len(low) != len(high):
            raise TargetError("%s-%s: zero padding must give both bounds the same width" % (low, high))
        if int(low) > int(high) or int(step) < 1:
            raise TargetError("%s: the low bound must not pass the high one, the step must be at least 1"
                              % element.strip())
        count += (int(high) - int(low)) // int(step) + 1
        width = max(width, len(low), len(high))
        widths.update((len(low), len(high)))
    if joined and len(widths) > 1:
        raise TargetError("digits before a bracket join its numbers, and ClusterShell joins them to "
                          "numbers of different widths wrongly (n1[5-12] is n15..n112): give every number "
                          "in the bracket the same width (n1[05-12]) or move the digits in (n[15-19,110-112])")
    return count, width


def _padded(bound):
    return len(bound) > 1 and bound.startswith("0")


def term_size(body: str, excluded: bool) -> "tuple[int, int]":
    """(names it adds, names it removes) of one term: what follows a ``!`` (the term's own,
    or NodeSet's operator inside it) removes, everything else adds."""
    adds = removes = 0
    for operand in term_operands(body):
        if excluded or operand.operator == "!":
            removes += operand.size
        else:
            adds += operand.size
    return adds, removes


def check_budget(adds: int, removes: int, limit: int, what: str = "the target") -> None:
    """TargetTooLarge when the included names pass ``limit``; TargetError when the excluded
    ones do (each is at most a pool's worth)."""
    if adds > limit:
        raise TargetTooLarge("%s stands for up to %s workers, counted before expansion (overlapping "
                             "ranges count twice); the most a pool may have is %d (max_pool_jobs)"
                             % (what, _count(adds), limit))
    if removes > limit:
        raise TargetError("%s excludes up to %s workers, counted before expansion; at most %d may be "
                          "excluded (max_pool_jobs)" % (what, _count(removes), limit))


def _count(number):
    """A count for a message: the number, or its order of magnitude when it is huge."""
    text = str(number)
    return text if len(text) <= 24 else "10^%d" % (len(text) - 1)
