"""`pcci run`'s usual command lines read without argparse, whose import (with gettext and
locale), building run's options and parsing cost ~3 ms of a command that should take a
few dozen. The same tables build argparse's parser (pcci.cli.options), and
tests/test_cli_parser.py checks that both read each line alike.

Read here: the top level's options, then ``run``, then run's options, each a whole word
(``--opt VALUE``, ``--opt=VALUE``, ``-w VALUE``, a flag), then the command: from ``--``
or from the first word that is not an option, to the end, as argparse's REMAINDER takes
it. Anything else is argparse's to read, and to answer with its usage error or help:
another command, ``-h``, an abbreviation (``--work``), joined short options (``-qB``,
``-wn1``), an empty value or one that starts with a dash, a value its type refuses."""

from types import SimpleNamespace

from .options import REMAINDER, SUPPRESS


def read_run(argv, top_table, run_table):
    """argparse's Namespace for ``argv`` (as a SimpleNamespace) when it is a `pcci run` line
    in the forms read here, else None. The tables: (option strings, add_argument's keywords)
    of the top level and of run."""
    top_options, run_options = options_by_string(top_table), options_by_string(run_table)
    values = defaults(top_table)
    at = 0
    while at < len(argv) and argv[at] != "run":
        at = take(top_options, argv, at, values)
        if at is None:
            return None
    if at == len(argv):
        return None
    values["command_name"] = "run"
    values.update(defaults(run_table))
    at += 1
    while at < len(argv) and argv[at] != "--" and argv[at].startswith("-"):
        at = take(run_options, argv, at, values)
        if at is None:
            return None
    values[remainder_of(run_table)] = list(argv[at:])
    return SimpleNamespace(**values)


def dest_of(strings, keywords):
    """The attribute an option sets, named as argparse names it."""
    if "dest" in keywords:
        return keywords["dest"]
    longs = [string for string in strings if string.startswith("--")]
    return (longs or strings)[0].lstrip("-").replace("-", "_")


def kind_of(keywords):
    """'flag', 'store' or 'append'; an option of any other kind cannot be read here."""
    unread = set(keywords) - {"action", "dest", "type", "metavar", "help", "default"}
    kind = {None: "store", "store": "store", "append": "append", "store_true": "flag"}.get(keywords.get("action"))
    if unread or kind is None:
        raise ValueError("an option quick_parse cannot read: %r" % (keywords,))
    return kind


def options_by_string(table):
    """{option string: (dest, kind, type)} of a table's options."""
    found = {}
    for strings, keywords in table:
        if strings[0].startswith("-"):
            for string in strings:
                found[string] = (dest_of(strings, keywords), kind_of(keywords), keywords.get("type"))
    return found


def defaults(table):
    """The attributes argparse sets before reading a parser's words (none for SUPPRESS)."""
    found = {}
    for strings, keywords in table:
        if strings[0].startswith("-"):
            default = keywords.get("default", False if kind_of(keywords) == "flag" else None)
            if default != SUPPRESS:
                found[dest_of(strings, keywords)] = default
    return found


def remainder_of(table):
    """The dest of the table's one positional, which must take the rest of the line."""
    positionals = [(strings, keywords) for strings, keywords in table if not strings[0].startswith("-")]
    if len(positionals) != 1 or positionals[0][1].get("nargs") != REMAINDER:
        raise ValueError("quick_parse reads one positional, the REMAINDER: %r" % (positionals,))
    return positionals[0][0][0]


def take(options, argv, at, values):
    """Read the option at ``argv[at]`` (and its value) into ``values``; the index after it,
    or None when it is not in a form read here."""
    word = argv[at]
    name, equals, inline = word.partition("=") if word.startswith("--") else (word, "", "")
    if name not in options:
        return None
    dest, kind, convert = options[name]
    if kind == "flag":
        if equals:
            return None
        values[dest] = True
        return at + 1
    text = inline if equals else argv[at + 1] if at + 1 < len(argv) else ""
    if not text or text.startswith("-"):
        return None                 # argparse reads "-1", "--" and "" values each its own way
    at += 1 if equals else 2
    try:
        value = convert(text) if convert else text
    except Exception:       # argparse calls it again, and says what was wrong
        return None
    values[dest] = (values.get(dest) or []) + [value] if kind == "append" else value
    return at
