"""argparse for the pcci command, made cheap to start (a command should take a few dozen
milliseconds, and argparse's defaults cost several):

* ``ArgumentParser`` without shutil: argparse's help formatter asks shutil for the
  terminal's width, and is made for every add_argument; shutil's imports (bz2, lzma,
  fnmatch) cost ~2 ms;
* ``Commands``: a command's options are added only when that command is parsed."""

import argparse
import os
import sys

_columns = None


def terminal_columns(environ=os.environ, stream=None):
    """The terminal's width as shutil.get_terminal_size reads it: $COLUMNS, else the
    terminal of stdout, else 80."""
    try:
        columns = int(environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size((stream or sys.__stdout__).fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose help is as wide as argparse makes it (the terminal's
    width less 2), measured once; subparsers are of this class too (add_subparsers)."""

    def _get_formatter(self):
        global _columns
        if _columns is None:
            _columns = terminal_columns()
        return self.formatter_class(prog=self.prog, width=_columns - 2)


class Commands(argparse._SubParsersAction):
    """The subcommands' action (``add_subparsers(action=Commands)``), each command's parser
    made when that command is parsed: a command line names one, so `pcci run` builds run's
    options alone, not the ~150 of every command (argparse's add_parser builds each up
    front, 3.6 ms). A command not yet built is listed in ``choices`` as None; the
    top-level usage and help need only its name and help, which are there from the start."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_options = {}

    def add_command(self, name, help_text, add_options):
        """A command and its help line; ``add_options(parser)`` adds its arguments when built."""
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help_text))
        self._name_parser_map[name] = None      # its place in the listed order, kept when built
        self._add_options[name] = add_options

    def parser(self, name):
        """The command's parser, built on first use (as add_parser would have made it)."""
        built = self._name_parser_map[name]
        if built is None:
            built = self._parser_class(prog="%s %s" % (self._prog_prefix, name))
            self._add_options[name](built)
            self._name_parser_map[name] = built
        return built

    def build_all(self):
        for name in self._add_options:
            self.parser(name)

    def __call__(self, parser, namespace, values, option_string=None):
        if values[0] in self._add_options:      # an unknown name is argparse's to refuse
            self.parser(values[0])
        super().__call__(parser, namespace, values, option_string)
