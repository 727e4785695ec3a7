"""argparse's parser for the pcci command, without shutil: argparse's help formatter asks
shutil for the terminal's width, and is made for every add_argument; shutil's imports
(bz2, lzma, fnmatch) cost ~2 ms of a command that should start in a few dozen."""

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
