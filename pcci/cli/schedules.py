"""`pcci schedule add|list|show|rm|enable|disable`: the master's schedules (POST, GET, PUT,
DELETE /schedules), each firing an ordinary pool on its due times."""

import argparse
import json
import sys
import urllib.parse

ACTIONS = ("add", "list", "show", "rm", "enable", "disable")


def add_arguments(p, target_options, env_pair, connection_options):
    """`pcci schedule ACTION ...`: the words after the action are read by ``action_parser``
    (the name first, then options, then the command after --, as `pcci run` takes it;
    argparse alone cannot read a command after a name). The options are declared here too,
    for -h, bash completion and the man page's check."""
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="NAME, add's options, and -- COMMAND")
    add_options(p, target_options, env_pair, required=False)
    p.set_defaults(action_parser=lambda action: action_parser(action, target_options, env_pair, connection_options))


def action_parser(action, target_options, env_pair, connection_options):
    p = argparse.ArgumentParser(prog="pcci schedule " + action)
    connection_options(p, argparse.SUPPRESS)
    if action == "list":
        return p
    p.add_argument("name", help="the schedule's name")
    if action == "add":
        add_options(p, target_options, env_pair, required=True)
    return p


def add_options(p, target_options, env_pair, required):
    target_options(p, "run on")
    p.add_argument("--when", required=required, metavar="WHEN",
                   help="\"every 30s\" (s, m, h, d) or a cron expression, \"*/5 * * * *\" (add)")
    p.add_argument("--timezone", metavar="TZ", help="the cron expression's timezone (default UTC)")
    p.add_argument("--missed", choices=("skip", "run_once"),
                   help="a due time the master was away for: skip it (default) or run one pool, late")
    p.add_argument("--disabled", action="store_true", help="add it switched off")
    p.add_argument("-u", "--timeout", type=float, metavar="SECONDS", help="seconds before each job is killed")
    p.add_argument("-e", "--env", action="append", metavar="NAME=VALUE", type=env_pair,
                   help="set an environment variable")
    p.add_argument("--cwd", help="directory to run in")
    p.add_argument("-l", "--user", help="run the jobs as this user (root needs an admin token)")
    p.add_argument("--batch", metavar="N|N%", help="a rolling batch: at most N jobs (or N%%) at once")
    p.add_argument("--max-failures", type=int, metavar="K", help="once more than K jobs failed, start no more")
    p.add_argument("--queue", action="store_true", help="jobs for offline workers wait for them")


def read_action(args):
    """The action's words parsed into ``args`` (the command: the words after --)."""
    words = list(args.rest)
    command = []
    if "--" in words:
        cut = words.index("--")
        words, command = words[:cut], words[cut + 1:]
    parsed = args.action_parser(args.action).parse_args(words)
    for key, value in vars(parsed).items():
        setattr(args, key, value)
    args.command = command
    args.name = getattr(args, "name", None)
    return args


def body_of(args, target_of, batch_size):
    """POST /schedules' body from `pcci schedule add`'s arguments."""
    workers, exclude = target_of(args)
    body = {"name": args.name, "when": args.when, "cmd": " ".join(args.command), "workers": workers,
            "exclude": exclude, "timezone": args.timezone, "missed": args.missed, "timeout": args.timeout,
            "env": dict(args.env) if args.env else None, "cwd": args.cwd, "user": args.user,
            "batch": batch_size(args.batch), "maxFailures": args.max_failures,
            "offline": "queue" if args.queue else None, "enabled": False if args.disabled else None}
    return {key: value for key, value in body.items() if value is not None}


def run(args, client, target_of, batch_size, usage_error):
    """``client``: () -> the API client, made once the arguments are known to be good."""
    read_action(args)
    path = "/schedules/" + urllib.parse.quote(args.name or "", safe="")
    if args.action == "add" and not args.command:
        raise usage_error("give the command after --: pcci schedule add NAME --when WHEN -w NODES -- COMMAND")
    client = client()
    if args.action == "add":
        shown = client.call("POST", "/schedules", body_of(args, target_of, batch_size))
    elif args.action == "list":
        listed = client.call("GET", "/schedules")
        if args.json:
            print(json.dumps(listed, indent=2))
        else:
            print(table(listed["schedules"]))
        return 0
    elif args.action == "show":
        shown = client.call("GET", path)
    elif args.action == "rm":
        shown = client.call("DELETE", path)
        if not args.json:
            print("removed schedule %s" % args.name)
            return 0
    else:
        shown = client.call("PUT", path, {"enabled": args.action == "enable"})
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        describe(shown, sys.stdout)
    return 0


def table(schedules):
    from .output import render_table
    rows = [(s["name"], s["when"], "on" if s["enabled"] else "off", s["nextDue"] or "-",
             (s["lastRun"] or {}).get("outcome", "-"), s["lastSuccess"] or "-",
             (s.get("cmd") or "copy to %s" % (s.get("copy") or {}).get("dest"))[:40]) for s in schedules]
    return render_table(rows, ("NAME", "WHEN", "ENABLED", "NEXT DUE", "LAST", "LAST SUCCESS", "CMD"))


def describe(schedule, out):
    last = schedule["lastRun"] or {}
    lines = [("name", schedule["name"]), ("when", "%s (%s)" % (schedule["when"], schedule["timezone"])),
             ("enabled", "yes" if schedule["enabled"] else "no"), ("missed", schedule["missed"]),
             ("next due", schedule["nextDue"] or "-"), ("command", schedule.get("cmd") or
                                                        "copy to %s" % (schedule.get("copy") or {}).get("dest")),
             ("workers", schedule.get("workers", "*")), ("last run", "%s %s" % (last.get("due", "-"),
                                                                              last.get("outcome", ""))),
             ("last success", schedule["lastSuccess"] or "-"), ("changed by", schedule["changedBy"] or "-")]
    if last.get("error"):
        lines.append(("refused", last["error"]))
    if schedule.get("problem"):
        lines.append(("problem", schedule["problem"]))
    for label, value in lines:
        out.write("%-13s %s\n" % (label + ":", value))
    for pool in schedule.get("pools", []):
        out.write("  %s  %s  %s\n" % (pool["scheduledFor"], pool["id"], pool["outcome"]))
