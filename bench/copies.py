"""`pcci copy` against `pdcp` and `clush --copy` over real SSH, across a real delay line.

    python3 bench/copies.py [--hosts 20] [--size-mb 100] [--runs 2] [--rtts 2,50] [--quick]

As root. Builds bench/ssh_peers.py's lab (a controller namespace, HOSTS host namespaces
behind a router whose forwarded packets wait in a delay line, an sshd and a PCCI worker
in each host) and copies one file of SIZE MB of random bytes from the controller to
every host with each tool, in turn, RUNS times, alternating the order:

* pcci: `pcci copy FILE -w n[1-N] --dest DEST` -- hashing, the upload to the master (on
  the controller, over loopback) and the streamed copy to every worker, all timed; the
  master's uploaded file is deleted before each run, so every run uploads it again;
* pdcp -R ssh (pdsh's copy), and clush --copy (scp), over the same sshd, the same keys
  and the curve25519 key exchange.

Each host writes to a directory of its own (``/etc/netns/HOST/NAME``, which `ip netns
exec` mounts on ``/etc/NAME`` for that host's sshd and worker); every copy is checked
(size on every host, sha256 on the first and the last) and deleted before the next run.
The master's resident memory is sampled during each pcci run (peak minus start).
`--quick` is 4 hosts, 10 MB, one run. Everything started is stopped by PID, every
namespace deleted by name, the directories removed.

Relays (issue 27): `--rate-mbit R` makes the controller's link a real link of R Mbit/s
each way (`tc tbf` on both ends of its veth; the hosts' links stay unlimited, as on a
switch), so the master's link, not this machine's CPU, can be the bound. `--modes
star,tree` times `pcci copy` with the master's ``copy_relay_fanout`` at 0 (the master
feeds every worker) and at `--fanout` (a tree of relays, every worker with
``relay_listen``), restarting the master between them; `--targets 2,20` copies to the
first 2 hosts, then to the first 20, in the same lab. Tools and modes take turns first.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ssh_peers import REPO, TOKEN, Lab, host_address  # noqa: E402 (the lab lives there)

MB = 1024 * 1024
TOOLS = ("pcci", "pdcp", "clush --copy")
RELAY_PORT = 7715


def rss_of(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    def __init__(self, pid):
        self.pid = pid
        self.start = self.peak = rss_of(pid)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while not self.stopping.wait(0.05):
            self.peak = max(self.peak, rss_of(self.pid))

    def growth(self):
        self.stopping.set()
        self.thread.join(5)
        return self.peak - self.start


def cpu_seconds(pids):
    """User and system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def link_bytes_sent():
    """Bytes the controller's link has sent (inside its namespace, whose sysfs ip netns exec mounts)."""
    with open("/sys/class/net/eth0/statistics/tx_bytes") as handle:
        return int(handle.read())


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(MB), b""):
            digest.update(piece)
    return digest.hexdigest()


def tool_command(tool, source, dest_dir, hosts, names):
    if tool == "pcci":
        return [sys.executable, "-m", "pcci", "copy", "--json", source, "-w", ",".join(names), "--dest",
                os.path.join(dest_dir, "file")]
    if tool == "pdcp":
        return ["pdcp", "-R", "ssh", "-w", ",".join(hosts), source, os.path.join(dest_dir, "file")]
    return ["clush", "-w", ",".join(hosts), "--copy", source, "--dest", os.path.join(dest_dir, "file")]


def wait_online(port, names, seconds=60):
    """Until every worker is online (they dial in through the delay line after a restart of it)."""
    import http.client
    deadline = time.monotonic() + seconds
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/workers", headers={"Authorization": "Bearer " + TOKEN})
            online = {w["name"] for w in json.loads(connection.getresponse().read())["workers"] if w["online"]}
        except OSError:
            online = set()
        finally:
            connection.close()
        if set(names) <= online:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("workers not online after %ds: %s" % (seconds, sorted(set(names) - online)))
        time.sleep(0.2)


def pcci_phases(pool, started_wall):
    """Seconds from the start to the pool's creation (hash and upload), then to its first and
    last job's end (the copies to the workers)."""
    from datetime import datetime

    def seconds(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() - started_wall
    ends = sorted(seconds(job["endTime"]) for job in pool["jobs"].values())
    return [seconds(pool["createdTime"]), ends[0], ends[-1]]


def measure(args):
    """In the controller namespace: each tool's copy, timed, as JSON on stdout."""
    env = dict(os.environ, HOME=args.home, PCCI_URL="http://127.0.0.1:%d" % args.api_port, PCCI_TOKEN=TOKEN,
               PYTHONPATH=REPO, PDSH_SSH_ARGS_APPEND="-q")
    targets = args.target_count or args.hosts
    hosts = [host_address(n) for n in range(1, targets + 1)]
    names = ["n%d" % n for n in range(1, targets + 1)]
    landed = [os.path.join("/etc/netns", namespace, args.dest_name, "file")
              for namespace in args.namespaces.split(",")[:targets]]
    wait_online(args.api_port, ["n%d" % n for n in range(1, args.hosts + 1)])
    if args.controller_nice:
        # The controller's side gets its own share of the CPU, as it would on its own machine:
        # the master (for pcci) and each tool's client process tree alike.
        os.setpriority(os.PRIO_PROCESS, args.master_pid, args.controller_nice)
    digest = file_sha256(args.source)
    size = os.path.getsize(args.source)
    tools = [tool for tool in TOOLS if tool.split()[0] in args.tools.split(",")]
    samples = {tool: [] for tool in tools}
    growths, cpu, phases, sent = [], [], [], []
    worker_pids = [int(pid) for pid in args.worker_pids.split(",")]
    for run in range(args.runs):
        order = tools[run % len(tools):] + tools[:run % len(tools)]     # alternate who goes first
        for tool in order:
            for path in landed:
                if os.path.exists(path):
                    os.unlink(path)
            uploaded = os.path.join(args.master_state, "files", digest)
            if os.path.exists(uploaded):
                os.unlink(uploaded)      # every pcci run uploads the file again, as a first copy does
            peak = PeakRss(args.master_pid) if tool == "pcci" else None
            cpu_before = (cpu_seconds([args.master_pid]), cpu_seconds(worker_pids))
            sent_before = link_bytes_sent()
            started, started_wall = time.perf_counter(), time.time()
            nice = ["nice", "-n", str(args.controller_nice)] if args.controller_nice else []
            result = subprocess.run(nice + tool_command(tool, args.source, "/etc/" + args.dest_name, hosts, names),
                                    env=env, capture_output=True, text=True, timeout=1800)
            elapsed = time.perf_counter() - started
            sent.append(link_bytes_sent() - sent_before)
            if peak is not None:
                growths.append(peak.growth())
                cpu.append((cpu_seconds([args.master_pid]) - cpu_before[0], cpu_seconds(worker_pids) - cpu_before[1]))
            if result.returncode != 0:
                raise RuntimeError("%s failed: %s" % (tool, (result.stdout + result.stderr)[-1500:]))
            sizes = [os.path.getsize(path) if os.path.exists(path) else -1 for path in landed]
            if sizes != [size] * len(landed) or file_sha256(landed[0]) != digest or file_sha256(landed[-1]) != digest:
                raise RuntimeError("%s: the copies are not whole: %s" % (tool, sizes))
            samples[tool].append(elapsed)
            if tool == "pcci":
                phases.append(pcci_phases(json.loads(result.stdout), started_wall))
    for path in landed:
        if os.path.exists(path):
            os.unlink(path)
    print(json.dumps({"seconds": samples, "master_rss_growth": growths, "pcci_cpu": cpu, "pcci_phases": phases,
                      "link_bytes": sent}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rtts", default="2,50", help="round-trip times in ms, comma-separated")
    parser.add_argument("--quick", action="store_true", help="4 hosts, 10 MB, one run")
    parser.add_argument("--tools", default="pcci,pdcp,clush", help="which of pcci, pdcp, clush (comma-separated)")
    parser.add_argument("--rate-mbit", type=int, default=0,
                        help="the controller's link as a real link of this many Mbit/s each way (tc tbf); 0: none")
    parser.add_argument("--modes", default="star",
                        help="pcci copy's modes, comma-separated: star (copy_relay_fanout 0), tree (relays)")
    parser.add_argument("--fanout", type=int, default=2, help="the tree's fan-out (copy_relay_fanout)")
    parser.add_argument("--targets", default="", help="copy to the first N hosts, for each N (comma-separated); "
                                                      "default: all")
    for hidden in ("--measure", ):
        parser.add_argument(hidden, action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--home", "--source", "--dest-name", "--namespaces", "--master-state", "--worker-pids"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--controller-nice", type=int, default=0,
                        help="run the controller's side (the master; pdcp's and clush's clients) at this nice "
                             "value, e.g. -10: on a loaded machine the one master process otherwise gets a "
                             "thirtieth of the CPU next to the hosts' processes")
    for hidden in ("--api-port", "--master-pid", "--target-count"):
        parser.add_argument(hidden, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.hosts, args.size_mb, args.runs = 4, 10, 1
    if args.measure:
        return measure(args)
    for tool in ("pdcp", "clush", "cc", "iptables"):
        if not shutil.which(tool):
            sys.exit("copy bench: needs %s (./scripts/setup-deps; apt install libnetfilter-queue-dev iptables)" % tool)
    modes = [mode for mode in args.modes.split(",") if mode]
    tools = [tool for tool in args.tools.split(",") if tool != "pcci"]
    entries = (["pcci " + mode for mode in modes] if "pcci" in args.tools.split(",") else []) + tools
    target_counts = [int(n) for n in args.targets.split(",")] if args.targets else [args.hosts]
    relays = "tree" in modes
    uptimes = []
    with tempfile.TemporaryDirectory(prefix="pcci-copy-bench-") as directory:
        lab = Lab(directory, args.hosts)
        dest_name = "pcci-copy-bench-" + lab.prefix
        mount_point = os.path.join("/etc", dest_name)
        table = {}
        try:
            lab.build()
            if args.rate_mbit:
                lab.limit_controller(args.rate_mbit)
            os.makedirs(mount_point)                # where ip netns exec mounts each host's own directory
            for name in lab.hosts:
                os.makedirs(os.path.join("/etc/netns", name, dest_name))
                lab.etc_dirs.append(os.path.join("/etc/netns", name))
            lab.start_sshd()
            fanout = {"star": 0, "tree": args.fanout}
            lab.start_pcci({"copy_relay_fanout": fanout[modes[0]] if modes else 0},
                           (lambda number: {"relay_listen": "%s:%d" % (host_address(number), RELAY_PORT)})
                           if relays else None)
            source = os.path.join(directory, "source.bin")
            with open(source, "wb") as handle:
                for _ in range(args.size_mb):
                    handle.write(os.urandom(MB))
            os.chmod(directory, 0o755)
            worker_pids = ",".join(str(p.pid) for p in lab.processes[-args.hosts:])
            for rtt in [float(r) for r in args.rtts.split(",")]:
                lab.set_rtt(rtt)
                time.sleep(3 + rtt / 100.0)          # every worker (re)connected through the delay
                for run in range(args.runs):
                    for targets in target_counts:
                        turn = run % len(entries)
                        for entry in entries[turn:] + entries[:turn]:      # alternate who goes first
                            tool, _, mode = entry.partition(" ")
                            if mode and lab.master_settings["copy_relay_fanout"] != fanout[mode]:
                                lab.restart_master(copy_relay_fanout=fanout[mode])
                                time.sleep(2 + rtt / 100.0)
                            row = measure_in_lab(lab, args, tool, targets, source, dest_name, worker_pids)
                            cell = table.setdefault((rtt, targets), {}).setdefault(entry, {
                                "seconds": [], "rss": [], "cpu": [], "phases": [], "link": []})
                            cell["seconds"].extend(row["seconds"][TOOLS[[t.split()[0] for t in TOOLS].index(tool)]])
                            cell["rss"].extend(row["master_rss_growth"])
                            cell["cpu"].extend(row["pcci_cpu"])
                            cell["phases"].extend(row["pcci_phases"])
                            cell["link"].extend(row["link_bytes"])
                            uptimes.append(os.getloadavg()[0])
                queue = subprocess.run(["ip", "netns", "exec", lab.router, "cat",
                                        "/proc/net/netfilter/nfnetlink_queue"], capture_output=True, text=True)
                fields = queue.stdout.split()
                if len(fields) >= 8:    # the delay line's queue: packets it dropped (full), over the whole run
                    print("RTT %g ms: delay line dropped %s (queue full) and %s (its socket full) of %s packets"
                          % (rtt, fields[5], fields[6], fields[7]), file=sys.stderr)
            fallbacks = [line for log in lab.service_logs("worker").values() for line in log.splitlines()
                         if "the rest comes from the master" in line or "taking the file again" in line]
            if relays:
                print("relayed copies that went on from the master: %d%s" % (
                    len(fallbacks), "".join("\n  " + line[:300] for line in fallbacks[:8])), file=sys.stderr)
        finally:
            lab.close()
            if os.path.isdir(mount_point):
                os.rmdir(mount_point)
    print("%d MB, seconds (median of %d; every run)%s; load average 1 min during the runs: %.1f-%.1f"
          % (args.size_mb, args.runs, ", controller link %d Mbit/s" % args.rate_mbit if args.rate_mbit else "",
             min(uptimes), max(uptimes)))
    for (rtt, targets), row in sorted(table.items()):
        for entry, cell in row.items():
            times = cell["seconds"]
            print("RTT %4g ms  %2d hosts  %-14s %7.2f   (%s)   controller link sent %s MB" % (
                rtt, targets, entry, statistics.median(times), ", ".join("%.2f" % t for t in times),
                "/".join("%.0f" % (b / MB) for b in cell["link"])))
            if cell["cpu"]:
                print("    CPU s, master / all workers: %s; master RSS growth: %s MB; phases (s, uploaded, first "
                      "/ last done): %s" % (
                          ", ".join("%.1f / %.1f" % tuple(pair) for pair in cell["cpu"]),
                          "/".join("%.1f" % (g / MB) for g in cell["rss"]),
                          ", ".join("%.1f, %.1f / %.1f" % tuple(p) for p in cell["phases"])))


def measure_in_lab(lab, args, tool, targets, source, dest_name, worker_pids):
    """One run of one tool, measured inside the controller namespace (``measure``)."""
    output = subprocess.run(
        ["ip", "netns", "exec", lab.controller, sys.executable, os.path.abspath(__file__), "--measure",
         "--hosts", str(args.hosts), "--target-count", str(targets), "--runs", "1", "--home", lab.env["HOME"],
         "--api-port", str(lab.api_port), "--source", source, "--dest-name", dest_name,
         "--namespaces", ",".join(lab.hosts), "--master-state", lab.master_settings["state_dir"],
         "--master-pid", str(lab.master.pid), "--tools", tool, "--controller-nice", str(args.controller_nice),
         "--worker-pids", worker_pids],
        capture_output=True, text=True, timeout=7200, env=lab.env)
    if output.returncode != 0:
        sys.exit("measuring failed: %s" % output.stderr[-3000:])
    return json.loads(output.stdout.strip().splitlines()[-1])

if __name__ == "__main__":
    main()
