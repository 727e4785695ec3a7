"""Entry point of `pcci` and its subcommands (the services' own, `pcci-master` and
`pcci-worker`, are in ``services``).

Thin on purpose: parse arguments, load config, set up logging, build, run, exit code.
The services' modules (and gevent) are imported only by the commands that need them;
the commands' options are in ``options``, and `pcci run`'s usual lines are read without
argparse (``quick_parse``).
"""

import json
import sys

from .options import RUN_LINE, build_parser
from .quick_parse import read_run

# The client's own failures (sysexits.h), apart from argparse's usage error (2).
EXIT_API_ERROR = 1          # the master refused the request (its message is printed)
EXIT_USAGE = 2              # as argparse: a bad option, or a file an option names cannot be used
EXIT_UNAVAILABLE = 69       # EX_UNAVAILABLE: the master cannot be reached
EXIT_NO_PERMISSION = 77     # EX_NOPERM: the token is missing or wrong


def _client(args):
    from ..client.transport import Client, settings
    if args.token:
        print("pcci: warning: --token shows the token to every user of this machine (ps); "
              "use --token-file, $PCCI_TOKEN or ~/.config/pcci/client.yaml", file=sys.stderr)
    url, token, cacert, fingerprint = settings(args.url, args.token, args.token_file, args.cacert, args.fingerprint)
    return Client(url, token, cacert, fingerprint)


def cmd_run(args):
    from ..states import OfflinePolicy
    from .waiting import Waiter
    client = _client(args)
    workers, exclude = target_of(args)
    if args.pick is not None:
        workers, exclude = picked(client, workers, exclude, args.pick), None
    env = dict(args.env) if args.env else None
    command = script_of(args.script, args.command) if args.script else " ".join(args.command)
    rollout = {"user": args.user, "batch": batch_size(args.batch), "maxFailures": args.max_failures,
               "offline": OfflinePolicy.QUEUE.value if args.queue or args.queue_timeout else None, "queueTimeout": args.queue_timeout,
               "stdin": None if args.no_stdin else stdin_of(sys.stdin), "notify": notify_of(args)}
    def submit(wait=None, accepted=None):
        return client.submit(command, workers, args.timeout, env, args.cwd, exclude=exclude,
                             options={k: v for k, v in rollout.items() if v is not None}, wait=wait, accepted=accepted)
    if args.async_:
        print(submit()["id"])
        return 0
    waiter = Waiter(client, None, sys.stderr, sys.stderr.isatty() and not args.json and not args.quiet)
    if args.stream:
        waiter.pool_id = submit()["id"]
        return _streamed(client, waiter.pool_id, waiter, display_of(args))
    # One request submits and waits: no second round trip for a pool that ends within it.
    return _waited(waiter, args.json, display_of(args), waiter.submit_and_wait(submit))


def display_of(args):
    from .output import Display
    return Display(merge_stderr=args.merge_stderr, line_mode=args.line_mode, prefix=not args.no_prefix,
                   quiet=args.quiet, outdir=args.outdir)


def picked(client, workers, exclude, count):
    """--pick N: N of the online workers the target names, at random (as clush --pick)."""
    import random
    if count < 1:
        raise UsageError("--pick takes a number of workers, at least 1")
    online = [w["name"] for w in client.workers(workers, exclude) if w["online"]]
    if not online:
        raise UsageError("--pick: the target names no online worker")
    return random.sample(online, min(count, len(online)))


def notify_of(args):
    """--notify URL (repeatable), --notify-on, --notify-secret-file: POST /job's notify, or None."""
    if not args.notify:
        return None
    on = [word.strip() for word in args.notify_on.split(",") if word.strip()]
    secret = None
    if args.notify_secret_file:
        try:
            with open(args.notify_secret_file) as handle:
                secret = handle.read().strip()
        except OSError as exc:
            raise UsageError("cannot read the notify secret %s: %s" % (args.notify_secret_file, exc.strerror))
    return [dict({"url": url, "on": on}, **({"secret": secret} if secret else {})) for url in args.notify]


def stdin_of(stream):
    """What `pcci run` forwards to every job's stdin, as clush does: its own stdin when that is
    not a terminal (None then, or when there is none). At most MAX_STDIN_BYTES: one byte more
    is read to tell, never the rest."""
    if stream is None or stream.isatty():
        return None
    try:
        data = stream.buffer.read(1)
        if not data:
            return None             # empty (/dev/null, a closed pipe): nothing to import for
        from ..protocol import MAX_STDIN_BYTES
        data += stream.buffer.read(MAX_STDIN_BYTES)
    except (OSError, ValueError):
        return None                 # closed, or not readable: nothing to forward
    import base64
    if len(data) > MAX_STDIN_BYTES:
        raise UsageError("standard input is over %d bytes (the most a job is sent); copy the data with "
                         "pcci copy, or give --no-stdin" % MAX_STDIN_BYTES)
    return {"base64": base64.b64encode(data).decode("ascii")} if data else None


def script_of(path, args):
    """The command that runs a local script on the workers (pcci.cli.script)."""
    from .script import ScriptRefused, script_command
    try:
        with open(path, "rb") as handle:
            return script_command(handle.read(), args)
    except OSError as exc:
        raise UsageError("cannot read the script %s: %s" % (path, exc.strerror))
    except ScriptRefused as exc:
        raise UsageError("the script %s cannot be sent: %s" % (path, exc))


def _write_outdir(pool, outdir):
    """--outdir: each node's stdout and stderr in files; a node that cannot be written is
    named on stderr and makes the status at least 1."""
    if outdir is None:
        return 0
    from .outdir import write_outputs
    try:
        problems = write_outputs(pool, outdir)
    except OSError as exc:
        raise UsageError("cannot write to %s: %s" % (outdir, exc.strerror))
    for problem in problems:
        print("pcci: --outdir: %s" % problem, file=sys.stderr)
    return 1 if problems else 0


def _waited(waiter, as_json, display=None, pool=False):
    """Wait for the pool (progress on a terminal, Ctrl-C kills it), print it, give its status;
    ``pool``: the finished pool (or None after Ctrl-C) when the caller waited already."""
    from . import output
    from .waiting import EXIT_INTERRUPTED
    display = display or output.Display()
    pool = waiter.wait() if pool is False else pool
    if pool is None:
        return EXIT_INTERRUPTED
    written = _write_outdir(pool, display.outdir)
    if as_json:
        print(json.dumps(pool, indent=2))
    else:
        print_pool(pool, display)
    return max(output.pool_exit_status(pool), written)


def print_pool(pool, display=None):
    """The output as ``display`` says: grouped (stderr on stderr, or merged) or in lines."""
    from . import output
    out, err = output.render(pool, display or output.Display())
    if out:
        print(out)
    sys.stdout.flush()
    if err:
        print(err, file=sys.stderr)


def _streamed(client, pool_id, waiter=None, display=None):
    """Follow a pool's output line by line; Ctrl-C kills it when this command started it
    (``waiter``), else only stops following. The status is the pool's, as without --stream."""
    from . import output
    from .follow import follow
    from .waiting import EXIT_INTERRUPTED
    display = display or output.Display()
    try:
        follow(client, pool_id, sys.stdout, sys.stderr, display.prefix)
    except KeyboardInterrupt:
        if waiter is not None:
            waiter.interrupted()
        else:
            print("pcci: stopped following pool %s (it goes on)" % pool_id, file=sys.stderr)
        return EXIT_INTERRUPTED
    pool = client.pool(pool_id)
    written = _write_outdir(pool, display.outdir)
    for name, job in pool["jobs"].items():
        if job["state"] != "succeeded" and not display.quiet:
            print("pcci: %s: %s" % (name, output.describe(job)), file=sys.stderr)
    return max(output.pool_exit_status(pool), written)


def cmd_copy(args):
    """Write a local file on the targeted workers, as clush -c and pdcp do; wait and report per node."""
    from .copying import copy_body, tree_body
    from .waiting import Waiter
    import os
    client = _client(args)
    workers, exclude = target_of(args)
    if os.path.isdir(args.source) and not args.recursive:
        raise UsageError("%s is a directory: give -r to copy it and what it holds" % args.source)
    try:
        if args.recursive:
            body = tree_body(client, args.source, args.dest)
        else:
            with open(args.source, "rb") as handle:
                body = copy_body(client, handle, args.dest)
    except OSError as exc:
        raise UsageError("cannot read %s: %s" % (exc.filename or args.source, exc.strerror))
    body["workers"] = workers
    for name, value in (("exclude", exclude), ("mode", args.mode), ("owner", args.owner),
                        ("relay", None if args.relay else False), ("notify", notify_of(args)),
                        ("batch", batch_size(args.batch)), ("maxFailures", args.max_failures)):
        if value is not None:
            body[name] = value
    submitted = client.call("POST", "/copy", body)
    return _waited(Waiter(client, submitted["id"], sys.stderr, sys.stderr.isatty() and not args.json), args.json)


def cmd_fetch(args):
    """Read a file on each targeted worker into DIR/NODE/ (rpdcp, clush --rcopy); wait and report per node."""
    from .copying import fetch_into
    from .waiting import EXIT_INTERRUPTED, Waiter
    from . import output
    client = _client(args)
    workers, exclude = target_of(args)
    body = {"path": args.path, "workers": workers}
    for name, value in (("exclude", exclude), ("batch", batch_size(args.batch)), ("maxFailures", args.max_failures)):
        if value is not None:
            body[name] = value
    submitted = client.call("POST", "/fetch", body)
    pool = Waiter(client, submitted["id"], sys.stderr, sys.stderr.isatty() and not args.json).wait()
    if pool is None:
        return EXIT_INTERRUPTED
    failed = fetch_into(client, pool, args.path, args.dest, sys.stderr)
    if args.json:
        print(json.dumps(pool, indent=2))
    else:
        print_pool(pool)
    return max(output.pool_exit_status(pool), 1 if failed else 0)


def cmd_pool(args):
    from . import output
    if args.follow:
        return _streamed(_client(args), args.id)
    pool = _client(args).pool(args.id, wait=args.wait)
    if args.json:
        print(json.dumps(pool, indent=2))
    else:
        print("pool %s: %s (%s)" % (pool["id"], pool["status"], pool["cmd"]))
        print_pool(pool)
    return output.shown_pool_status(pool)


def cmd_pools(args):
    from . import output
    page = _client(args).pools(args.status, args.limit)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    rows = [(p["id"], p["status"], p["exitCode"] if p["exitCode"] is not None else "-",
             " ".join("%s=%d" % kv for kv in sorted(p["states"].items())), p["cmd"][:40]) for p in page["pools"]]
    print(output.render_table(rows, ("ID", "STATUS", "EXIT", "JOBS", "CMD")))
    return 0


def cmd_workers(args):
    from . import output
    if args.forget:
        _client(args).forget_worker(args.forget)
        print("forgot worker %s" % args.forget)
        return 0
    workers, exclude = target_of(args, required=False)
    workers = _client(args).workers(workers, exclude)
    if args.json:
        print(json.dumps(workers, indent=2))
        return 0
    rows = []
    for w in workers:
        stats = w["stats"] or {}
        rows.append((w["name"], "online" if w["online"] else "offline", w["address"] or "-",
                     stats.get("cpuPercent", "-"), (stats.get("memory") or {}).get("percent", "-"),
                     stats.get("temperature") if stats.get("temperature") is not None else "-",
                     len(w["runningJobs"]), ",".join("%s=%s" % item for item in sorted(w["labels"].items())) or "-"))
    print(output.render_table(rows, ("NAME", "STATE", "ADDRESS", "CPU%", "MEM%", "TEMP", "JOBS", "LABELS")))
    return 0


class UsageError(Exception):
    """A command line that names no target, or names it wrongly: exit 2, as argparse does."""


def target_of(args, required=True):
    """(workers expression, exclude expression) from -w, -g, -a and -x, as clush reads them:
    -w takes names and ranges, -g a group or a label selector (KEY=VALUE), -a every online
    worker. Without any, `pcci run` refuses (clush does too): every node needs --all."""
    parts = list(args.workers or [])
    parts += [group if "=" in group or group.startswith("@") else "@" + group for group in args.group or []]
    if args.all:
        parts.append("*")
    if not parts and required:
        raise UsageError("name the workers: -w NODES (node[1-4] ranges too), -g GROUP or -g KEY=VALUE, "
                         "or -a for every online worker")
    exclude = ",".join(args.exclude or []) or None
    if not parts and exclude:
        parts = ["*"]
    return (",".join(parts) or None), exclude


def cmd_kill(args):
    workers = [w for w in args.workers.split(",") if w] if args.workers else None
    result = _client(args).kill(args.id, workers)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, outcome in sorted(result["workers"].items()):
        print("%s: %s" % (name, outcome))
    return 0


def cmd_keygen(args):
    from ..auth import new_key
    print(new_key())
    return 0


def cmd_check_config(args):
    from .. import config
    from ..errors import ConfigError
    try:
        cfg = config.load_master(args.file) if args.kind == "master" else config.load_worker(args.file)
        config.read_cluster_key(cfg)
        if args.kind == "master":
            from ..master.group_file import read_groups
            config.read_api_tokens(cfg)
            read_groups(cfg)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    print("%s: valid %s configuration" % (args.file, args.kind))
    return 0


def cmd_schedule(args):
    from . import schedules
    return schedules.run(args, lambda: _client(args), target_of, batch_size, UsageError)


COMMANDS = {"copy": cmd_copy, "fetch": cmd_fetch, "run": cmd_run, "pool": cmd_pool, "pools": cmd_pools,
            "workers": cmd_workers, "kill": cmd_kill, "keygen": cmd_keygen, "check-config": cmd_check_config,
            "schedule": cmd_schedule}


def batch_size(text):
    """--batch N or N%: the number, or the percentage as the API takes it; a bad one is a usage error."""
    if text is None:
        return None
    if text.endswith("%") and text[:-1].isdigit():
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise UsageError("--batch takes a number of jobs or a percentage (e.g. 2 or 25%%), not %r" % text)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # `pcci run`'s usual lines without argparse; anything else (help, errors) argparse reads.
    args = read_run(argv, *RUN_LINE) or build_parser(lazy=True).parse_args(argv)
    if args.command_name in ("master", "worker"):
        from .service_run import run
        return run(args.command_name, args.config)
    if args.command_name == "run":
        if args.command and args.command[0] == "--":
            args.command = args.command[1:]
        if not args.command and not args.script:
            print("pcci run: give a command after -- (or --script FILE)", file=sys.stderr)
            return EXIT_USAGE
    from ..client.transport import PcciError
    try:
        return COMMANDS[args.command_name](args)
    except UsageError as exc:
        print("pcci %s: %s" % (args.command_name, exc), file=sys.stderr)
        return EXIT_USAGE
    except PcciError as exc:
        print("pcci: %s" % exc, file=sys.stderr)
        return client_error_status(exc)
    except KeyboardInterrupt:
        return 130


def client_error_status(error):
    """The exit status for a failed API call: unreachable, refused credentials, or refused request."""
    from ..client.transport import LOCAL_SETUP
    if error.code == LOCAL_SETUP:
        return EXIT_USAGE
    if error.status is None:
        return EXIT_UNAVAILABLE
    if error.status in (401, 403):
        return EXIT_NO_PERMISSION
    return EXIT_API_ERROR


def _console():
    from .quick_exit import exit_now
    exit_now(main())
