"""pcci.cli.parser, options and quick_parse: the pcci command's help is laid out as
argparse lays it out, without shutil; a command line builds only its command's options;
`pcci run`'s usual lines read without argparse come out as argparse reads them."""

import argparse
import io
import random

import pytest

from pcci.cli import main, options, parser, quick_parse


@pytest.mark.parametrize("columns", ["50", "132"])
def test_help_and_usage_are_argparses_own_at_any_width(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(parser, "_columns", None)       # measured once per process: measure again
    ours = main.build_parser()
    monkeypatch.setattr(parser, "ArgumentParser", argparse.ArgumentParser)
    stock = main.build_parser()
    assert ours.format_help() == stock.format_help()
    for name in ("run", "copy", "workers"):
        assert (ours._subparsers._group_actions[0].choices[name].format_help() ==
                stock._subparsers._group_actions[0].choices[name].format_help())


def test_the_width_is_columns_else_the_terminal_else_80():
    assert parser.terminal_columns({"COLUMNS": "100"}) == 100
    assert parser.terminal_columns({"COLUMNS": "wide"}, stream=io.StringIO()) == 80
    assert parser.terminal_columns({}, stream=io.StringIO()) == 80


COMMAND_LINES = [
    [], ["-h"], ["--version"], ["bogus"], ["--url", "http://m:1", "--json"], ["run"], ["--json", "run", "--json"],
    ["run", "-w", "n1", "--", "true"], ["run", "-h"], ["run", "-e", "no-equals", "--", "true"],
    ["--url", "http://m:1", "run", "-a", "--json", "-e", "A=1", "-x", "n2", "--batch", "25%", "--", "echo", "x"],
    ["run", "--tok", "abbreviated", "-w", "n1", "--url", "http://after:2", "--", "true"],
    ["run", "-w", "n1", "--bogus"], ["run", "--pick", "two", "--", "true"], ["run", "-qB", "-wn1", "-L", "uptime"],
    ["run", "-w", "n1", "echo", "-q", "--", "x"], ["run", "--max-failures", "-1", "-a", "--", "x"],
    ["run", "--workers=n[1-3]", "--notify-on=", "-u", "1e3", "-t", "inf", "--script", "s.sh", "--", "a", "b"],
    ["copy", "file", "--dest", "/x", "-w", "a", "-r", "--mode", "0600"], ["copy"], ["copy", "-h"],
    ["fetch", "/etc/x", "--dest", "d", "-a"], ["pool", "id1", "--wait", "3", "-f"], ["pool"],
    ["pools", "--status", "done", "--limit", "3"], ["pools", "--status", "sideways"], ["pools", "-h"],
    ["workers", "--forget", "pi1"], ["workers", "-g", "model=pi4"], ["kill", "id", "-w", "a,b"],
    ["schedule", "add", "nightly", "--when", "every 1h", "-w", "a", "--", "true"], ["schedule", "-h"],
    ["schedule", "never"], ["keygen"], ["keygen", "extra"], ["check-config", "master", "f.yaml"],
    ["check-config", "cluster", "f.yaml"], ["master", "--config", "m.yaml"], ["worker"], ["worker", "-h"],
]


def parsed(parser, argv, capsys):
    """(what parse_args gave, its exit status if it exited, stdout, stderr); the values of
    a Namespace, less the functions (a lambda is a new object in each parser)."""
    try:
        namespace, status = parser.parse_args(argv), None
    except SystemExit as exc:
        namespace, status = None, exc.code
    out, err = capsys.readouterr()
    values = {key: value for key, value in vars(namespace).items() if not callable(value)} if namespace else None
    return values, status, out, err


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda argv: " ".join(argv) or "(nothing)")
def test_building_only_the_named_commands_options_parses_as_the_whole_parser_does(monkeypatch, capsys, argv):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr(parser, "_columns", None)
    assert parsed(main.build_parser(lazy=True), argv, capsys) == parsed(main.build_parser(), argv, capsys)


def test_a_command_line_builds_the_options_of_its_command_alone():
    built = main.build_parser(lazy=True)
    built.parse_args(["--url", "http://m:1", "pools", "--limit", "3"])
    commands = built._subparsers._group_actions[0].choices
    assert [name for name, command in commands.items() if command is not None] == ["pools"]
    assert list(commands) == list(main.build_parser()._subparsers._group_actions[0].choices)


def agrees_with_argparse(argv, capsys):
    """Whether quick_parse read ``argv`` (else argparse alone reads it); when it did, it
    must have read it as argparse does, which must not have refused it."""
    quick = quick_parse.read_run(argv, *options.RUN_LINE)
    if quick is None:
        return False
    values, status, out, err = parsed(main.build_parser(lazy=True), argv, capsys)
    assert (vars(quick), status, out, err) == (values, None, "", ""), argv
    return True


def test_the_usual_run_lines_are_read_without_argparse_as_argparse_reads_them(capsys):
    read = [argv for argv in COMMAND_LINES if agrees_with_argparse(argv, capsys)]
    assert ["run", "-w", "n1", "--", "true"] in read and ["run", "-qB", "-wn1", "-L", "uptime"] not in read
    assert len(read) == 5, read


def test_random_run_lines_are_read_as_argparse_reads_them_or_left_to_it(capsys):
    """Lines made of run's own option strings and values of every shape."""
    strings = sorted(set(quick_parse.options_by_string(options.RUN_LINE[0]))
                     | set(quick_parse.options_by_string(options.RUN_LINE[1])))
    values = ["n1", "pi[1-4]", "", "A=1", "=x", "-1", "2.5", "25%", "inf", "--", "-", "run", "x y", "--url", "-qB"]
    shapes = random.Random(26)
    read = 0
    for _ in range(3000):
        words = [shapes.choice(strings + values) for _ in range(shapes.randrange(5))]
        words += ["run"] + [shapes.choice(strings + values) for _ in range(shapes.randrange(7))]
        words = [word + "=" + shapes.choice(values) if word.startswith("--") and shapes.random() < 0.2 else word
                 for word in words]
        read += agrees_with_argparse(words, capsys)
    assert read > 100               # the check checked something


def test_the_tables_use_argparses_own_words():
    assert (options.SUPPRESS, options.REMAINDER) == (argparse.SUPPRESS, argparse.REMAINDER)
    run = main.build_parser()._subparsers._group_actions[0].choices["run"]
    assert [action.default for action in run._actions if action.dest == "url"][0] is argparse.SUPPRESS
