#!/usr/bin/env python3
"""The health check as a schedule: the master runs it, no cron entry or loop on another box.

    healthcheck_schedule.py                    # every 5 minutes on every worker
    healthcheck_schedule.py --when "every 1m" --workers @pis --disk 85

Adds (or brings up to date: running it again changes nothing) the schedule
``healthcheck``: at each due time every targeted worker checks itself -- its root
filesystem's use, its temperature (where the Pi reports one), its load against its
cores -- and exits 1, saying why, if one is over its threshold. Each run is an ordinary
pool (``pcci pools``, the dashboard); ``pcci schedule show healthcheck`` lists the latest
with their outcome, and examples/pcci-alerts.yml's PcciScheduleNotSucceeding alert fires
when it stops succeeding. Fires once per due time even across master restarts and
failovers. Reads PCCI_URL / PCCI_TOKEN as the pcci command does (an operate token).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pcci.client.transport import Client, PcciError, settings  # noqa: E402

NAME = "healthcheck"
CHECK = r"""fail=0
use=$(df -P / | awk 'NR == 2 {{sub("%", "", $5); print $5}}')
[ "$use" -lt {disk} ] || {{ echo "root filesystem ${{use}}% full (limit {disk}%)"; fail=1; }}
zone=/sys/class/thermal/thermal_zone0/temp
if [ -r $zone ]; then
    celsius=$(( $(cat $zone) / 1000 ))
    [ "$celsius" -lt {temperature} ] || {{ echo "temperature ${{celsius}} C (limit {temperature} C)"; fail=1; }}
fi
load=$(cut -d' ' -f1 /proc/loadavg)
cores=$(nproc)
if awk -v load="$load" -v cores="$cores" 'BEGIN {{ exit !(load > {load} * cores) }}'; then
    echo "load $load on $cores cores (limit {load} per core)"; fail=1
fi
echo "disk ${{use}}%, load $load"
exit $fail"""


def schedule_body(args):
    """The schedule (POST /schedules' body), pure."""
    return {"name": NAME, "when": args.when, "workers": args.workers, "timeout": 60, "missed": "skip",
            "offline": "fail", "cmd": CHECK.format(disk=args.disk, temperature=args.temperature, load=args.load)}


def apply(client, body):
    """Add the schedule, or change it to ``body``; what was done."""
    try:
        shown = client.call("GET", "/schedules/" + NAME)
    except PcciError as exc:
        if exc.status != 404:
            raise
        client.call("POST", "/schedules", body)
        return "added"
    if all(shown.get(key) == value for key, value in body.items()):
        return "unchanged"
    client.call("PUT", "/schedules/" + NAME, {key: value for key, value in body.items() if key != "name"})
    return "changed"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="the master (else $PCCI_URL)")
    parser.add_argument("--token", help="an operate token (else $PCCI_TOKEN)")
    parser.add_argument("--when", default="every 5m", help="\"every 5m\" or a cron expression")
    parser.add_argument("--workers", default="*", help="a target expression (default: every online worker)")
    parser.add_argument("--disk", type=int, default=90, help="root filesystem use, percent, that fails the check")
    parser.add_argument("--temperature", type=int, default=80, help="degrees Celsius that fail the check")
    parser.add_argument("--load", type=float, default=2.0, help="1-minute load per core that fails the check")
    args = parser.parse_args(argv)
    url, token, cacert, fingerprint = settings(args.url, args.token)
    try:
        print("schedule %s %s" % (NAME, apply(Client(url, token, cacert, fingerprint), schedule_body(args))))
    except PcciError as exc:
        print("healthcheck_schedule: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
