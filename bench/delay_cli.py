"""The CLI and the API over the delay line, two code trees side by side, in one run.

    python3 bench/delay_cli.py --before /path/to/other/tree [--hosts 20] [--runs 2] [--samples 9] [--rtts 2.3,50.5]

Builds the lab of bench/ssh_peers.py (a controller namespace, HOSTS host namespaces behind
a router whose forwarded packets wait in bench/delayline.c; no default route anywhere)
and starts two PCCI clusters in it at once: this tree's ("after") and the --before
tree's, each a master on the controller and a worker in every host namespace (TLS
worker link, as by default). From the controller it times, per RTT:

* api 2 requests: POST /job then GET /pool/ID?wait= on one keep-alive connection;
* api 1 request: POST /job?wait= (the trees that have it);
* cli: ``pcci run -w n1 -- true`` (1 host) and ``pcci run -a -- true`` (every host), a new
  process each time, as people type it; and ``pcci run`` against a closed port (what
  the CLI costs before its first byte: interpreter, imports, argument parsing);
* clush -w ... true through warm ssh ControlMaster connections (the best case for SSH).

Before and after alternate sample by sample (ABAB...), RUNS rounds of SAMPLES each;
each row is the median of a round. Everything started is stopped by PID and every
namespace deleted by name.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssh_peers import CONTROLLER_ADDRESS, REPO, TOKEN, Lab, host_address  # noqa: E402

PYTHON = "/usr/bin/python3"         # Debian's, as a Pi runs it
API_PORTS = {"after": 8080, "before": 8081}
WORKER_PORTS = {"after": 7070, "before": 7071}


def start_cluster(lab, variant, tree):
    """A master on the controller and a worker per host, of the code in ``tree``."""
    key = subprocess.run([PYTHON, "-m", "pcci", "keygen"], capture_output=True, text=True, cwd=tree,
                         check=True).stdout.strip()
    base = os.path.join(lab.directory, variant)
    services = [("master", lab.controller, {
        "cluster_key": key, "state_dir": os.path.join(base, "master"), "api_host": "127.0.0.1",
        "api_port": API_PORTS[variant], "api_tokens": [TOKEN], "worker_host": CONTROLLER_ADDRESS,
        "worker_port": WORKER_PORTS[variant], "log_level": "warning"})]
    for number, name in enumerate(lab.hosts, 1):
        services.append(("worker", name, {
            "cluster_key": key, "state_dir": os.path.join(base, "w%d" % number), "master_host": CONTROLLER_ADDRESS,
            "master_port": WORKER_PORTS[variant], "node_name": "n%d" % number, "log_level": "warning"}))
    os.makedirs(base)
    for kind, namespace, settings in services:
        path = os.path.join(base, "%s-%s.yaml" % (kind, namespace))
        with open(path, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(settings, handle)
        lab.processes.append(subprocess.Popen(
            ["ip", "netns", "exec", namespace, PYTHON, "-m", "pcci", kind, "--config", path],
            cwd=base, env=dict(os.environ, PYTHONPATH=tree), stderr=subprocess.DEVNULL))


# -- measuring, inside the controller namespace ---------------------------------------------
class Api:
    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": "Bearer " + TOKEN}

    def call(self, method, path, body=None):
        self.connection.request(method, path, json.dumps(body) if body else None, self.headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())

    def online(self):
        try:
            return self.call("GET", "/health")[1]["workersOnline"]
        except OSError:             # not listening yet
            self.connection.close()
            return 0

    def two_requests(self, workers):
        pool_id = self.call("POST", "/job", {"cmd": "true", "workers": workers})[1]["id"]
        return self.call("GET", "/pool/%s?wait=60" % pool_id)[1]

    def one_request(self, workers):
        return self.call("POST", "/job?wait=60", {"cmd": "true", "workers": workers})[1]


def timed(action, check):
    started = time.perf_counter()
    outcome = action()
    elapsed = time.perf_counter() - started
    check(outcome)
    return elapsed


def api_check(count):
    def check(pool):
        if pool.get("exitCode") != 0 or len(pool["jobs"]) != count:
            raise RuntimeError("unexpected pool: %s" % json.dumps(pool)[:500])
    return check


def cli_action(tree, port, argv, expect_status=0):
    env = dict(os.environ, PYTHONPATH=tree, PCCI_TOKEN=TOKEN, PCCI_URL="http://127.0.0.1:%d" % port)

    def action():
        result = subprocess.run([PYTHON, "-m", "pcci"] + argv, env=env, cwd="/", stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != expect_status:
            raise RuntimeError("pcci %s: status %d: %s" % (" ".join(argv), result.returncode, result.stderr[-500:]))
        return result
    return action


def measure(args):
    trees = {"before": args.before, "after": REPO}
    apis = {variant: Api(API_PORTS[variant]) for variant in trees}
    deadline = time.monotonic() + 120
    for variant, api in apis.items():
        while api.online() < args.hosts:
            if time.monotonic() > deadline:
                raise RuntimeError("%s: only %d workers online" % (variant, api.online()))
            time.sleep(0.5)
    everyone = ["n%d" % n for n in range(1, args.hosts + 1)]
    closed = 1          # nothing listens on port 1: the CLI's cost before its first answer
    rows = {
        "api, 2 requests, 1 host": lambda v: (lambda: apis[v].two_requests(everyone[:1]), api_check(1)),
        "api, 2 requests, %d hosts" % args.hosts: lambda v: (lambda: apis[v].two_requests(everyone),
                                                             api_check(args.hosts)),
        "api, 1 request, 1 host": lambda v: (lambda: apis[v].one_request(everyone[:1]), api_check(1)),
        "api, 1 request, %d hosts" % args.hosts: lambda v: (lambda: apis[v].one_request(everyone),
                                                            api_check(args.hosts)),
        "cli: pcci run -w n1 -- true": lambda v: (cli_action(trees[v], API_PORTS[v], ["run", "-w", "n1", "--", "true"]),
                                                  lambda r: None),
        "cli: pcci run -a -- true (%d hosts)" % args.hosts: lambda v: (
            cli_action(trees[v], API_PORTS[v], ["run", "-a", "--", "true"]), lambda r: None),
        "cli: to a closed port (start, imports)": lambda v: (
            cli_action(trees[v], closed, ["run", "-w", "n1", "--", "true"], expect_status=69), lambda r: None),
    }
    results = {}
    for row, make in rows.items():
        samples = {variant: [] for variant in trees}
        supported = {variant: True for variant in trees}
        for variant in trees:               # one untimed call each: connections and caches warm
            action, check = make(variant)
            try:
                timed(action, check)
            except (RuntimeError, KeyError):
                supported[variant] = False
        for index in range(args.samples * 2):
            variant = ("before", "after")[index % 2]
            if supported[variant]:
                action, check = make(variant)
                samples[variant].append(timed(action, check))
        results[row] = {variant: statistics.median(s) if s else None for variant, s in samples.items()}
    clush_options = "-o ControlMaster=auto -o ControlPath=%s/%%C -o ControlPersist=300" % args.control_dir
    env = dict(os.environ, HOME=args.home)
    for label, targets in (("1 host", [host_address(1)]),
                           ("%d hosts" % args.hosts, [host_address(n) for n in range(1, args.hosts + 1)])):
        for target in targets:
            subprocess.run(["ssh"] + clush_options.split() + [target, "true"], env=env, check=True, timeout=60)
        argv = ["clush", "-o", clush_options.replace("%", "%%"), "-w", ",".join(targets), "true"]
        samples = []
        for _ in range(args.samples):
            samples.append(timed(lambda: subprocess.run(argv, env=env, capture_output=True, timeout=120, check=True),
                                 lambda r: None))
        results["clush, warm ssh, %s" % label] = {"clush": statistics.median(samples)}
    print(json.dumps(results))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="the other tree (e.g. a git worktree of main)")
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=9)
    parser.add_argument("--rtts", default="2.3,50.5", help="round-trip times in ms, comma-separated")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--control-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args)
    before = os.path.abspath(args.before)
    with tempfile.TemporaryDirectory(prefix="pcci-delay-cli-") as directory:
        lab = Lab(directory, args.hosts)
        table = []
        try:
            lab.build()
            lab.start_sshd()
            start_cluster(lab, "after", REPO)
            start_cluster(lab, "before", before)
            for rtt in [float(r) for r in args.rtts.split(",")]:
                lab.set_rtt(rtt)
                time.sleep(3 + rtt / 100.0)
                for run in range(1, args.runs + 1):
                    output = subprocess.run(
                        ["ip", "netns", "exec", lab.controller, PYTHON, os.path.abspath(__file__), "--measure",
                         "--before", before, "--hosts", str(args.hosts), "--samples", str(args.samples),
                         "--home", lab.env["HOME"], "--control-dir", lab.control_dir],
                        capture_output=True, text=True, timeout=1800, env=lab.env)
                    if output.returncode != 0:
                        sys.exit("measuring failed: %s" % output.stderr[-3000:])
                    table.append((rtt, run, json.loads(output.stdout.strip().splitlines()[-1])))
        finally:
            lab.close()
    print("ms, median of %d samples per run; before and after alternated sample by sample" % args.samples)
    for rtt, run, results in table:
        print("\nRTT %g ms, run %d%s" % (rtt, run, " " * 28) + "before      after")
        for row, values in results.items():
            cells = ["%8.1f" % (1000 * v) if v is not None else "%8s" % "-" for v in values.values()]
            print("  %-44s%s" % (row, "    ".join(cells)))


if __name__ == "__main__":
    main()
