"""The services' entry points: `pcci-master` / `pcci-worker` and `pcci master|worker`.

A worker runs all day on hosts as small as a Pi, so starting one must not import or
build the whole CLI (argparse, gettext, every subcommand's parser: ~2 MB it would keep
for its life). The one form the units use, ``--config PATH``, is read here by hand;
anything else (``--help``, a typo) goes to the CLI's parser, which answers as before.
"""

import sys

EXIT_CONFIG = 78   # EX_CONFIG from sysexits.h; systemd units stop restarting on it
KINDS = ("master", "worker")


def config_path(arguments):
    """The config file's path from a service's arguments (after its kind), or None when
    they are anything but ``--config PATH`` or ``--config=PATH``."""
    if len(arguments) == 2 and arguments[0] == "--config" and not arguments[1].startswith("-"):
        return arguments[1]
    if len(arguments) == 1 and arguments[0].startswith("--config=") and len(arguments[0]) > len("--config="):
        return arguments[0][len("--config="):]
    return None


def run(kind, path):
    """Load the config, set up logging and run the service; its exit status."""
    from .. import config, logs
    from ..errors import CannotStart, ConfigError
    try:
        # A worker lets PyYAML go once it has read the file: it runs for months on small hosts.
        cfg = config.load_master(path) if kind == "master" else config.load_and_let_go(path, kind)
        logs.setup(cfg.log_level)
        if kind == "master":
            from ..master import greenlet_locals
            greenlet_locals.import_bottle()     # first, so requests never share bottle's state
            from ..master import service
        else:
            from ..worker import service
        return service.run(cfg)
    except ConfigError as exc:
        for problem in exc.problems:
            print("pcci-%s: config error: %s" % (kind, problem), file=sys.stderr)
        return EXIT_CONFIG
    except CannotStart as exc:
        print("pcci-%s: cannot start: %s" % (kind, exc), file=sys.stderr)
        return EXIT_CONFIG


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
