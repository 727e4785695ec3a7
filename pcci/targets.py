"""Target expressions: which workers a pool is for, the way clush, pdsh and Salt name them (pure).

An expression is terms separated by commas or spaces (a comma inside ``[...]`` belongs
to a range)::

    node7              a worker's name
    node[01-10,12]     a range, as ClusterShell's NodeSet reads it: node01..node10, node12
    pi[1-3]-eth[0-1]   ranges multiply: pi1-eth0, pi1-eth1, ..., pi3-eth1
    @pis               a group from the master's ``groups`` (itself an expression)
    model=pi4          every known worker whose label ``model`` is ``pi4``
    *                  every online worker
    !node3  !@rack-b   leave these out (as the ``exclude`` field and ``pcci -x`` do)

Names come out in the order given (a range in NodeSet's order), each once. Ranges are
expanded by ClusterShell's NodeSet (Debian's python3-clustershell), the field's
standard implementation; it is imported only when an expression has a bracket.

Nothing is expanded before it is counted: ``parse`` measures each range from its text
(``pcci.target_size``) and ``resolve`` adds the groups' counts, so an expression that
stands for more than a pool may hold is refused in time linear in its length.
"""

import re

from .target_size import MAX_NAME_LENGTH, TargetError, check_budget, term_size

# Label keys and values: what a selector can name without quoting.
LABEL_TEXT = re.compile(r"[A-Za-z0-9_.:/-]{1,63}")   # fullmatch only
MAX_GROUP_DEPTH = 8


class Term:
    __slots__ = ("include", "kind", "value", "position", "text", "adds", "removes")

    def __init__(self, include, kind, value, position, text, adds=0, removes=0):
        self.include = include      # False: a ! term, left out
        self.kind = kind            # "names", "range", "group", "label", "all"
        self.value = value          # the names (a list), a range's text, the group, (key, value), or None
        self.position = position    # where the term starts in the expression (0-based)
        self.text = text
        # How many names it stands for, counted before expansion (pcci.target_size), for
        # "names" and "range"; a group's count is its expression's, known when resolved.
        self.adds, self.removes = adds, removes


def names_term(names, text="workers", include=True):
    """A term for a list of names taken as given (the ``workers`` list of a request)."""
    count = len(names)
    return Term(include, "names", list(names), 0, text, count if include else 0, 0 if include else count)


def inverted(terms):
    """The terms with include and exclude swapped (the ``exclude`` field), counts to match."""
    for term in terms:
        term.include = not term.include
        if term.kind == "range":
            term.adds, term.removes = term_size(term.value, not term.include)
        elif term.kind == "names":
            term.adds, term.removes = term.removes, term.adds
    return terms


def split_terms(expression):
    """(position, text) of each top-level term (pure)."""
    terms, start, depth = [], None, 0
    for index, char in enumerate(expression + ","):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if (char in ", \t\n" and depth <= 0) or index == len(expression):
            if start is not None:
                terms.append((start, expression[start:index]))
                start = None
            depth = max(depth, 0)
        elif start is None:
            start = index
    return terms


def parse(expression, limit):
    """The terms of an expression, nothing expanded; TargetError for a malformed one, and
    TargetTooLarge (a TargetError) when its names, counted arithmetically, pass ``limit``
    (a pool's max_pool_jobs). Time and memory are linear in the expression's length."""
    terms = scan(expression)
    check_budget(sum(term.adds for term in terms), sum(term.removes for term in terms), limit)
    return terms


def scan(expression):
    """The terms of an expression, each measured; nothing expanded, no limit applied."""
    if not isinstance(expression, str) or not expression.strip():
        raise TargetError("the target is empty; name workers, a range, @group, label=value or *")
    terms = []
    for position, text in split_terms(expression):
        include = not text.startswith("!")
        body = text if include else text[1:]
        where = "%r at character %d" % (text[:80], position + 1)
        if not body:
            raise TargetError("%s: nothing after '!'" % where)
        if body == "*":
            terms.append(Term(include, "all", None, position, text))
        elif body.startswith("@"):
            if not LABEL_TEXT.fullmatch(body[1:]):
                raise TargetError("%s: a group name is letters, digits and _.:/-" % where)
            terms.append(Term(include, "group", body[1:], position, text))
        elif "=" in body:
            key, _, value = body.partition("=")
            if not LABEL_TEXT.fullmatch(key) or not LABEL_TEXT.fullmatch(value):
                raise TargetError("%s: a label selector is KEY=VALUE, each letters, digits and _.:/-" % where)
            terms.append(Term(include, "label", (key, value), position, text))
        elif not any(char in body for char in "[]!&^"):
            if len(body) > MAX_NAME_LENGTH:
                raise TargetError("%s: a worker's name has at most %d characters" % (where, MAX_NAME_LENGTH))
            terms.append(Term(include, "names", [body], position, text, int(include), int(not include)))
        else:
            try:
                adds, removes = term_size(body, not include)
            except TargetError as exc:
                raise TargetError("%s: %s" % (where, exc))
            terms.append(Term(include, "range", body, position, text, adds, removes))
    return terms


def expand(text, where):
    """The names a measured range stands for (``scan`` counted them first). Any failure of
    ClusterShell's parser is the expression's fault, a TargetError: its own errors, and
    those it lets escape on odd input (AssertionError, OverflowError...)."""
    from ClusterShell.NodeSet import RESOLVER_NOGROUP, NodeSet, NodeSetException
    try:
        # No group resolver: ClusterShell's own groups.conf could run commands; @group is ours.
        return list(NodeSet(text, resolver=RESOLVER_NOGROUP))
    except (NodeSetException, ValueError, AssertionError, OverflowError, RecursionError) as exc:
        raise TargetError("%s: %s" % (where, exc or type(exc).__name__))


def fold(names):
    """``node[1-3,5],web`` for a list of names, as clush prints them; the list joined with
    commas where ClusterShell is not installed (the CLI may run without it)."""
    if len(names) < 2:
        return ",".join(names)      # nothing to fold: ClusterShell not even imported
    try:
        from ClusterShell.NodeSet import NodeSet
    except ImportError:
        return ",".join(names)
    return str(NodeSet.fromlist(names))


class Cluster:
    """What resolving asks of the workers, only when an expression needs it: ``online()``
    the online names, ``labels()`` each known worker's labels ({name: {key: value}}), and
    ``groups`` the master's groups."""

    def __init__(self, online, labels, groups):
        self.online, self.labels, self.groups = online, labels, groups


def resolve(terms, cluster, limit):
    """The names the terms select, in order, each once: includes in turn, then excludes.
    The whole expression, its groups included, is counted against ``limit`` before any
    range is expanded; each group, label selector and ``*`` is then looked up once, so
    repeating a term costs no more than its text."""
    known = {}
    adds, removes, _ = _measure(terms, cluster.groups, known, 0)
    check_budget(adds, removes, limit)
    return _Resolution(cluster, known).names(terms)


def _measure(terms, groups, known, depth):
    """(adds, removes, parsed) of terms with their groups' counts; ``known`` holds each
    group's (adds, removes, terms) once measured."""
    adds = removes = 0
    for term in terms:
        if term.kind == "group":
            group_adds, group_removes = _group(term, groups, known, depth)[:2]
            if term.include:
                adds, removes = adds + group_adds, removes + group_removes
            else:
                removes += group_adds + group_removes
        else:
            adds, removes = adds + term.adds, removes + term.removes
    return adds, removes, terms


def _group(term, groups, known, depth):
    if term.value not in known:
        expression = groups.get(term.value)
        if expression is None:
            raise TargetError("%r at character %d: no group %r in the master's groups (%s)"
                              % (term.text, term.position + 1, term.value,
                                 ", ".join(sorted(groups)[:50]) or "none defined"))
        if depth >= MAX_GROUP_DEPTH:
            raise TargetError("group %r: groups nest more than %d deep (a group that names itself?)"
                              % (term.value, MAX_GROUP_DEPTH))
        known[term.value] = _measure(scan(expression), groups, known, depth + 1)
    return known[term.value]


class _Resolution:
    """One resolution's lookups, each made once: ``*``, the label index, each group."""

    def __init__(self, cluster, known):
        self.cluster = cluster
        self.known = known          # each group's terms, as _measure scanned them
        self.online = None
        self.by_label = None
        self.groups = {}

    def names(self, terms):
        chosen = {}
        excluded = set()
        for term in terms:
            names = self._term_names(term)
            if term.include:
                chosen.update(dict.fromkeys(names))
            else:
                excluded.update(names)
        return [name for name in chosen if name not in excluded]

    def _term_names(self, term):
        if term.kind == "names":
            return term.value
        if term.kind == "range":
            return expand(term.value, "%r at character %d" % (term.text[:80], term.position + 1))
        if term.kind == "all":
            if self.online is None:
                self.online = self.cluster.online()
            return self.online
        if term.kind == "label":
            if self.by_label is None:
                self.by_label = {}
                for name, labels in sorted(self.cluster.labels().items()):
                    for pair in labels.items():
                        self.by_label.setdefault(pair, []).append(name)
            return self.by_label.get(term.value, ())
        if term.value not in self.groups:      # _measure has checked that it exists and nests
            self.groups[term.value] = self.names(self.known[term.value][2])
        return self.groups[term.value]


def check_groups(groups, limit):
    """Problems with the master's ``groups`` (for config validation): each must parse."""
    problems = []
    for name, expression in sorted(groups.items()):
        if not LABEL_TEXT.fullmatch(str(name)):
            problems.append("group name %r: use letters, digits and _.:/-" % name)
            continue
        try:
            parse(expression, limit)        # counts, expands nothing
        except TargetError as exc:
            problems.append("group %s: %s" % (name, exc))
    return problems


def check_labels(labels):
    """Problems with a worker's ``labels`` (its config, and its hello on the master)."""
    if not isinstance(labels, dict):
        return ["labels must be a map of names to values"]
    if len(labels) > 64:
        return ["at most 64 labels"]
    return ["label %r: %r: keys and values are 1-63 letters, digits and _.:/-" % (key, value)
            for key, value in labels.items()
            if not (isinstance(key, str) and isinstance(value, str) and LABEL_TEXT.fullmatch(key)
                    and LABEL_TEXT.fullmatch(value))]
