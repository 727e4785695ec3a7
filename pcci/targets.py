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
"""

import re

# Label keys and values: what a selector can name without quoting.
LABEL_TEXT = re.compile(r"[A-Za-z0-9_.:/-]{1,63}")   # fullmatch only
MAX_GROUP_DEPTH = 8


class TargetError(ValueError):
    """A malformed expression; the message points at the term and where it starts."""


class Term:
    __slots__ = ("include", "kind", "value", "position", "text")

    def __init__(self, include, kind, value, position, text):
        self.include = include      # False: a ! term, left out
        self.kind = kind            # "names", "group", "label", "all"
        self.value = value          # the names (a list), the group, (key, value), or None
        self.position = position    # where the term starts in the expression (0-based)
        self.text = text


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
    """The terms of an expression; TargetError for a malformed one. ``limit`` bounds how
    many names one range may stand for (a pool's max_pool_jobs)."""
    if not isinstance(expression, str) or not expression.strip():
        raise TargetError("the target is empty; name workers, a range, @group, label=value or *")
    terms = []
    for position, text in split_terms(expression):
        include = not text.startswith("!")
        body = text if include else text[1:]
        where = "%r at character %d" % (text, position + 1)
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
        else:
            terms.append(Term(include, "names", expand(body, where, limit), position, text))
    return terms


def expand(text, where, limit):
    """The names a name or range stands for."""
    if not any(char in text for char in "[]!&^@"):
        return [text]
    from ClusterShell.NodeSet import NodeSet, NodeSetException
    try:
        nodes = NodeSet(text)
        if len(nodes) > limit:
            raise TargetError("%s stands for %d workers; the most a pool may have is %d"
                              % (where, len(nodes), limit))
        return list(nodes)
    except TargetError:
        raise
    except NodeSetException as exc:
        raise TargetError("%s: %s" % (where, exc))
    except ValueError as exc:                   # RangeSet's own errors
        raise TargetError("%s: %s" % (where, exc))


def fold(names):
    """``node[1-3,5],web`` for a list of names, as clush prints them; the list joined with
    commas where ClusterShell is not installed (the CLI may run without it)."""
    try:
        from ClusterShell.NodeSet import NodeSet
    except ImportError:
        return ",".join(names)
    return str(NodeSet.fromlist(names))


class Cluster:
    """What resolving asks of the workers, only when an expression needs it: ``online()``
    the online names, ``labelled(key, value)`` the known workers with that label, and
    ``groups`` the master's groups."""

    def __init__(self, online, labelled, groups):
        self.online, self.labelled, self.groups = online, labelled, groups


def resolve(terms, cluster, limit, depth=0):
    """The names the terms select, in order, each once: includes in turn, then excludes."""
    chosen = {}
    excluded = set()
    for term in terms:
        names = _term_names(term, cluster, limit, depth)
        if term.include:
            chosen.update(dict.fromkeys(names))
        else:
            excluded.update(names)
    return [name for name in chosen if name not in excluded]


def _term_names(term, cluster, limit, depth):
    if term.kind == "names":
        return term.value
    if term.kind == "all":
        return cluster.online()
    if term.kind == "label":
        return cluster.labelled(*term.value)
    expression = cluster.groups.get(term.value)
    if expression is None:
        raise TargetError("%r at character %d: no group %r in the master's groups (%s)"
                          % (term.text, term.position + 1, term.value,
                             ", ".join(sorted(cluster.groups)) or "none defined"))
    if depth >= MAX_GROUP_DEPTH:
        raise TargetError("group %r: groups nest more than %d deep (a group that names itself?)"
                          % (term.value, MAX_GROUP_DEPTH))
    return resolve(parse(expression, limit), cluster, limit, depth + 1)


def check_groups(groups, limit):
    """Problems with the master's ``groups`` (for config validation): each must parse."""
    problems = []
    for name, expression in sorted(groups.items()):
        if not LABEL_TEXT.fullmatch(str(name)):
            problems.append("group name %r: use letters, digits and _.:/-" % name)
            continue
        try:
            parse(expression, limit)
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
