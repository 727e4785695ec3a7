"""The services' entry points: `pcci-master` / `pcci-worker` and `pcci master|worker`.

A worker runs all day on hosts as small as a Pi, so starting one must not import or
build the whole CLI (argparse, gettext, every subcommand's parser: ~2 MB it would keep
for its life). The one form the units use, ``--config PATH``, is read here by hand;
anything else (``--help``, a typo) goes to the CLI's parser, which answers as before.
"""

import sys

from .service_run import run

KINDS = ("master", "worker")


def config_path(arguments):
    """The config file's path from a service's arguments (after its kind), or None when
    they are anything but ``--config PATH`` or ``--config=PATH``."""
    if len(arguments) == 2 and arguments[0] == "--config" and not arguments[1].startswith("-"):
        return arguments[1]
    if len(arguments) == 1 and arguments[0].startswith("--config=") and len(arguments[0]) > len("--config="):
        return arguments[0][len("--config="):]
    return None


def main(argv):
    """``argv`` as ``pcci`` gets it (``worker --config PATH``); a service's exit status,
    or the CLI's answer to arguments a unit never gives."""
    if argv and argv[0] in KINDS:
        path = config_path(argv[1:])
        if path is not None:
            return run(argv[0], path)
    from .main import main as cli_main
    return cli_main(argv)


def main_master():
    sys.exit(main(["master"] + sys.argv[1:]))


def main_worker():
    sys.exit(main(["worker"] + sys.argv[1:]))
