"""pcci.cli.parser: the pcci command's help is laid out as argparse lays it out, without
shutil."""

import argparse
import io

import pytest

from pcci.cli import main, parser


@pytest.mark.parametrize("columns", ["50", "132"])
def test_help_and_usage_are_argparses_own_at_any_width(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(parser, "_columns", None)       # measured once per process: measure again
    ours = main.build_parser()
    monkeypatch.setattr(main, "ArgumentParser", argparse.ArgumentParser)
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
    [], ["-h"], ["--version"], ["bogus"], ["--url", "http://m:1", "--json"],
    ["run", "-w", "n1", "--", "true"], ["run", "-h"], ["run", "-e", "no-equals", "--", "true"],
    ["--url", "http://m:1", "run", "-a", "--json", "-e", "A=1", "-x", "n2", "--batch", "25%", "--", "echo", "x"],
    ["run", "--tok", "abbreviated", "-w", "n1", "--url", "http://after:2", "--", "true"],
    ["run", "-w", "n1", "--bogus"], ["run", "--pick", "two", "--", "true"],
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
    built.parse_args(["--url", "http://m:1", "run", "-w", "n1", "--", "true"])
    commands = built._subparsers._group_actions[0].choices
    assert [name for name, command in commands.items() if command is not None] == ["run"]
    assert list(commands) == list(main.build_parser()._subparsers._group_actions[0].choices)
