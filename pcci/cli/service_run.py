"""Run a service (master or worker) from its config file: the one step that `pcci-master`,
`pcci-worker` (``services``) and `pcci master|worker` (the CLI) share."""

import sys

EXIT_CONFIG = 78   # EX_CONFIG from sysexits.h; systemd units stop restarting on it


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
