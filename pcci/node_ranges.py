"""Node names folded into ranges for the common case -- one prefix, then a number --
without ClusterShell, whose import costs 8-13 ms of a `pcci run` that prints a group of
two nodes or more. Anything else (padding, suffixes, several prefixes) is left to it.
Pure; tests check the answer against ClusterShell's own."""

PREFIX_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def split_number(name):
    """'pi12' -> ('pi', 12); None unless the name is a plain prefix then an unpadded number."""
    end = len(name)
    start = end
    while start and name[start - 1].isdigit() and name[start - 1].isascii():
        start -= 1
    prefix, digits = name[:start], name[start:]
    if not prefix or not digits or (digits[0] == "0" and len(digits) > 1):
        return None
    if not all(character in PREFIX_CHARACTERS for character in prefix):
        return None
    return prefix, int(digits)


def fold_numbered(names):
    """'pi[1-3,5]' for ['pi1', 'pi2', 'pi3', 'pi5'], as ClusterShell's NodeSet prints it;
    None when the names are not all one prefix and an unpadded number."""
    prefix, numbers = None, set()
    for name in names:
        parts = split_number(name)
        if parts is None or (prefix is not None and parts[0] != prefix):
            return None
        prefix = parts[0]
        numbers.add(parts[1])
    if prefix is None:
        return None
    ordered = sorted(numbers)
    if len(ordered) == 1:
        return "%s%d" % (prefix, ordered[0])
    runs, first, last = [], ordered[0], ordered[0]
    for number in ordered[1:]:
        if number != last + 1:
            runs.append((first, last))
            first = number
        last = number
    runs.append((first, last))
    return "%s[%s]" % (prefix, ",".join("%d" % a if a == b else "%d-%d" % (a, b) for a, b in runs))
