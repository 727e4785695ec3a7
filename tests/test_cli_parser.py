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
