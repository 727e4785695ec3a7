"""What each pcci command takes: its options as tables of (option strings, add_argument's
keywords), from which argparse's parser is built (``build_parser``) and `pcci run`'s usual
command lines are read without argparse (pcci.cli.quick_parse). argparse itself is
imported only to build a parser."""

from .. import __version__

# argparse's own values, without importing argparse: equal, not the same object, and
# argparse tells SUPPRESS by identity, so ``add`` passes it argparse's own.
SUPPRESS = "==SUPPRESS=="
REMAINDER = "..."


def env_pair(text):
    """NAME=VALUE for -e; anything else is a usage error, not a traceback."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        import argparse
        raise argparse.ArgumentTypeError("expected NAME=VALUE, got %r" % text)
    return name, value


def connection_table(default):
    """--url, --token..., --json: before the command, after it, or both (after wins)."""
    return (
        (("--url",), dict(default=default, help="master URL (else $PCCI_URL, ~/.config/pcci/client.yaml, "
                                                 "http://127.0.0.1:8080)")),
        (("--token",), dict(default=default, help="API token; visible in ps, so prefer --token-file")),
        (("--token-file",), dict(default=default, help="a file holding the API token (else $PCCI_TOKEN_FILE, "
                                                       "$PCCI_TOKEN or the client config)")),
        (("--cacert",), dict(default=default, help="CA file (or the master's own api.crt) to check an https master "
                                                   "with (else $PCCI_CACERT or cacert: in the client config)")),
        (("--fingerprint",), dict(default=default, help="accept only an https master whose certificate has this "
                                                        "SHA-256 fingerprint, as the master logs it (else "
                                                        "$PCCI_FINGERPRINT or fingerprint: in the client config)")),
        (("--json",), dict(action="store_true", default=False if default is None else default,
                           help="print the API's JSON")),
    )


def target_table(verb):
    return (
        (("-w", "--workers"), dict(action="append", metavar="NODES", help="%s these workers: names and ranges, "
                                                                         "e.g. pi[1-4],web1 (repeatable)" % verb)),
        (("-g", "--group"), dict(action="append", metavar="GROUP|KEY=VALUE",
                                 help="%s a group of the master's, or the workers with this label (repeatable)"
                                      % verb)),
        (("-x", "--exclude"), dict(action="append", metavar="NODES",
                                   help="leave these out: names, ranges, @group or KEY=VALUE (repeatable)")),
        (("-a", "--all"), dict(action="store_true", help="%s every online worker" % verb)),
    )


NOTIFY_OPTIONS = (
    (("--notify",), dict(action="append", metavar="URL", help="POST the pool's summary to URL when it ends "
                                                             "(repeatable; the master's notify_allow must list it)")),
    (("--notify-on",), dict(default="failed", metavar="WHEN", help="when to notify: failed, done (every job "
                                                                   "succeeded) or finished, comma-separated "
                                                                   "(default: failed)")),
    (("--notify-secret-file",), dict(metavar="FILE", help="a file holding the secret that signs the notification "
                                                          "(X-PCCI-Signature)")),
)

# As clush and pdsh: -u the command timeout, -l the user, -t the connect timeout.
RUN_OPTIONS = target_table("run on") + (
    (("-u", "--timeout"), dict(type=float, metavar="SECONDS", help="seconds before each job is killed")),
    (("-e", "--env"), dict(action="append", metavar="NAME=VALUE", type=env_pair, help="set an environment variable")),
    (("--cwd",), dict(help="directory to run in")),
    (("-l", "--user"), dict(help="run the jobs as this user (each worker's allowed_users say which)")),
    (("--batch", "-f", "--fanout"), dict(dest="batch", metavar="N|N%", help="a rolling batch: at most N jobs (or N%% "
                                                                           "of them) at once, the next as one ends")),
    (("--pick",), dict(type=int, metavar="N", help="run on N of the targeted online workers, picked at random")),
    (("-b", "--dshbak"), dict(action="store_true", help="group identical outputs under one header (the default; as "
                                                        "clush -b)")),
    (("-B",), dict(action="store_true", dest="merge_stderr", help="group stderr with stdout under the headers (as "
                                                                  "clush -B)")),
    (("-L",), dict(action="store_true", dest="line_mode", help="no headers: each line prefixed with its node, sorted "
                                                               "by node (as clush -L)")),
    (("-N",), dict(action="store_true", dest="no_prefix", help="no node prefix on lines (--stream, -L, stderr); as "
                                                               "clush -N")),
    (("-q", "--quiet"), dict(action="store_true", help="no progress line and no notice of jobs that did not succeed: "
                                                       "output only")),
    (("-S", "--maxrc"), dict(action="store_true", help="exit with the largest exit code (the default; as clush -S)")),
    (("--max-failures",), dict(type=int, metavar="K", help="once more than K jobs failed, start no more (the rest "
                                                           "end skipped)")),
    (("--queue",), dict(action="store_true", help="jobs for offline workers wait for them (default: they end offline "
                                                  "at once)")),
    (("-t", "--queue-timeout", "--connect-timeout"), dict(dest="queue_timeout", type=float, metavar="SECONDS",
                                                          help="how long a job waits for its offline worker to "
                                                               "connect (implies --queue; default 1 h)")),
    (("--async",), dict(dest="async_", action="store_true", help="print the pool id and return at once")),
    (("--stream",), dict(action="store_true", help="print output lines as they come, prefixed with the node (stdout "
                                                   "to stdout, stderr to stderr)")),
    (("--script",), dict(metavar="FILE", help="run this local script on each worker with the interpreter its #! line "
                                              "names (default /bin/sh); the words after -- are its arguments")),
    (("--no-stdin",), dict(action="store_true", help="do not forward pcci's standard input to the jobs (it is, when "
                                                     "it is not a terminal)")),
    (("--outdir",), dict(metavar="DIR", help="also write each node's output to DIR/NODE.out and DIR/NODE.err")),
) + NOTIFY_OPTIONS + (
    (("command",), dict(nargs=REMAINDER, help="the shell command (after --)")),
)

# `pcci run`'s line as pcci.cli.quick_parse reads it: the top level's options, then run's.
RUN_LINE = (connection_table(None), connection_table(SUPPRESS) + RUN_OPTIONS)


def add(parser, table):
    import argparse                 # loaded already: ``parser`` is argparse's
    for strings, keywords in table:
        if keywords.get("default") == SUPPRESS:
            keywords = dict(keywords, default=argparse.SUPPRESS)
        parser.add_argument(*strings, **keywords)


def connection_options(parser, default):
    add(parser, connection_table(default))


def target_options(parser, verb):
    add(parser, target_table(verb))


def build_parser(lazy=False):
    """The pcci command's parser. ``lazy``: each command's options are added only when that
    command is parsed (what `pcci` itself does: a command line names one command); else
    every command's, for what walks the whole parser (the man page's and completion's tests)."""
    from .parser import ArgumentParser, Commands
    parser = ArgumentParser(prog="pcci", description="Run commands across a cluster of PCCI workers.")
    parser.add_argument("--version", action="version", version="pcci " + __version__)
    connection_options(parser, None)
    commands = parser.add_subparsers(dest="command_name", required=True, action=Commands)
    for name, help_text, add_options in COMMAND_LINES:
        commands.add_command(name, help_text, add_options)
    if not lazy:
        commands.build_all()
    return parser


def client_command(table):
    """A client command's options: --url, --token... after the command too (default
    SUPPRESS: given after it, they win over the same given before it), then its own."""
    def add_options(parser):
        connection_options(parser, SUPPRESS)
        add(parser, table() if callable(table) else table)
    return add_options


def service_options(kind):
    return lambda parser: parser.add_argument("--config", required=True, help="the %s's YAML file" % kind)


COPY_OPTIONS = target_table("copy to") + (
    (("source",), dict(help="the local file (a directory with -r)")),
    (("--dest",), dict(required=True, help="the absolute path to write on each worker (with -r: the directory its "
                                           "contents go beneath, made if missing)")),
    (("-r", "--recursive"), dict(action="store_true", help="copy a directory and everything in it, keeping modes (as "
                                                           "clush --copy and pdcp -r)")),
    (("--mode",), dict(help="octal mode, e.g. 0644 (default: the replaced file's, else 0644)")),
    (("--owner",), dict(help="USER, USER:GROUP or :GROUP (the worker must run as root to change it)")),
    (("--no-relay",), dict(dest="relay", action="store_false",
                           help="send the file from the master to every worker, not through a tree of relaying workers")),
    (("--batch", "-f", "--fanout"), dict(dest="batch", metavar="N|N%", help="a rolling batch: at most N copies (or N%% "
                                          "of them) at once, the next as one ends (only the first turn is relayed)")),
    (("--max-failures",), dict(type=int, metavar="K", help="once more than K copies failed, start no more (the rest "
                                                           "end skipped)")),
) + NOTIFY_OPTIONS

FETCH_OPTIONS = target_table("fetch from") + (
    (("path",), dict(help="the absolute path of the file to read on each worker")),
    (("--dest",), dict(required=True, help="the local directory: each node's file goes to DEST/NODE/NAME")),
    (("--batch", "-f", "--fanout"), dict(dest="batch", metavar="N|N%", help="a rolling batch: read on at most N "
                                          "workers (or N%% of them) at once, the next as one ends")),
    (("--max-failures",), dict(type=int, metavar="K", help="once more than K reads failed, start no more (the rest "
                                                           "end skipped)")),
)

POOL_OPTIONS = (
    (("id",), {}),
    (("--wait",), dict(type=float, default=0, help="wait up to this many seconds for it to finish")),
    (("-f", "--follow"), dict(action="store_true", help="print its output lines as they come, prefixed with the "
                                                        "node, until it is done")),
)

WORKERS_OPTIONS = target_table("list") + (
    (("--forget",), dict(metavar="NAME", help="retire a worker that will not return: the master drops it and its "
                                              "record (refused while it is connected; its pools' history stays)")),
)

KILL_OPTIONS = (
    (("id",), {}),
    (("-w", "--workers"), dict(help="comma-separated worker names (default: all of the pool's)")),
)

CHECK_CONFIG_ARGUMENTS = (
    (("kind",), dict(choices=("master", "worker"))),
    (("file",), {}),
)


def pools_options():
    from ..states import PoolStatus, values      # here: only this table needs the enums
    return ((("--status",), dict(choices=values(PoolStatus))), (("--limit",), dict(type=int, default=50)))


def schedule_options(parser):
    from . import schedules
    connection_options(parser, SUPPRESS)
    schedules.add_arguments(parser, target_options, env_pair, connection_options)


# Each command: its name, its line in `pcci --help`, what adds its options (when it is the
# one parsed: pcci.cli.parser.Commands), in the order the help lists them.
COMMAND_LINES = (
    ("master", "run the master service in the foreground", service_options("master")),
    ("worker", "run the worker service in the foreground", service_options("worker")),
    ("run", "run a command on workers and print their output", client_command(RUN_OPTIONS)),
    ("copy", "write a local file on workers (atomically), as clush -c and pdcp do", client_command(COPY_OPTIONS)),
    ("fetch", "read a file on workers into DIR/NODE/, as rpdcp and clush --rcopy do", client_command(FETCH_OPTIONS)),
    ("pool", "show one pool", client_command(POOL_OPTIONS)),
    ("pools", "list pools, newest first", client_command(pools_options)),
    ("workers", "list workers, their stats and labels", client_command(WORKERS_OPTIONS)),
    ("kill", "kill a pool's jobs", client_command(KILL_OPTIONS)),
    ("schedule", "add, list, show, remove, enable or disable schedules (pools run on a timetable)", schedule_options),
    ("keygen", "print a fresh cluster key or API token", lambda parser: None),
    ("check-config", "validate a master or worker YAML file", lambda parser: add(parser, CHECK_CONFIG_ARGUMENTS)),
)
