"""PCCI against pdsh, clush and Ansible over real SSH, across a real delay line, in one run.

    python3 bench/ssh_peers.py [--hosts 20] [--runs 5] [--rtts 2,50]

Builds, as root, a controller namespace and HOSTS host namespaces behind a router
namespace whose forwarded packets wait in a delay line (bench/delayline.c on NFQUEUE:
this kernel has no netem), each host with its own sshd and its own PCCI worker. From the
controller it times `true` on one host and on all hosts with:

* PCCI: POST /job then GET /pool?wait= (the master runs on the controller; the worker
  link is TLS, as by default);
* pdsh -R ssh, clush, and clush through ssh ControlMaster connections opened beforehand
  (the best case for SSH); Ansible ad-hoc (`ansible all -m command -a true`, its
  ControlPersist connections warm from a first run).

SSH gets its fastest settings: the curve25519 key exchange (Debian 12's default
sntrup761x25519 costs ~50 ms of client CPU per connection) and a root with a plain
home and /bin/sh (feasibility.md). Medians of RUNS runs. Everything it starts is
stopped, and every namespace deleted, by name.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ANSIBLE = os.path.join(REPO, ".venv-ansible", "bin", "ansible")
CONTROLLER_ADDRESS, ROUTER_INSIDE = "10.214.0.2", "10.214.0.1"
HOST_NET, ROUTER_HOSTS = "10.214.1", "10.214.1.1"
TOKEN = "bench-" + "b" * 20


def sh(*args, check=True, **kwargs):
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=120, **kwargs)


def host_address(number):
    return "%s.%d" % (HOST_NET, 10 + number)


class Lab:
    def __init__(self, directory, count):
        self.directory, self.count = directory, count
        self.prefix = "pb%s" % uuid.uuid4().hex[:5]
        self.router, self.controller = self.prefix + "-r", self.prefix + "-c"
        self.hosts = ["%s-h%d" % (self.prefix, n) for n in range(1, count + 1)]
        self.namespaces, self.processes, self.etc_dirs = [], [], []
        self.delay = None

    # -- network ------------------------------------------------------------------------
    def build(self):
        for name in [self.router, self.controller] + self.hosts:
            sh("ip", "netns", "add", name)
            self.namespaces.append(name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", self.router, "link", "add", "c0", "type", "veth", "peer", "name", "eth0",
           "netns", self.controller)
        sh("ip", "-n", self.router, "addr", "add", ROUTER_INSIDE + "/24", "dev", "c0")
        sh("ip", "-n", self.router, "link", "set", "c0", "up")
        sh("ip", "-n", self.controller, "addr", "add", CONTROLLER_ADDRESS + "/24", "dev", "eth0")
        sh("ip", "-n", self.controller, "link", "set", "eth0", "up")
        # Only the hosts' subnet, no default route: nothing leaves the machine.
        sh("ip", "-n", self.controller, "route", "add", HOST_NET + ".0/24", "via", ROUTER_INSIDE)
        sh("ip", "-n", self.router, "link", "add", "br1", "type", "bridge")
        sh("ip", "-n", self.router, "addr", "add", ROUTER_HOSTS + "/24", "dev", "br1")
        sh("ip", "-n", self.router, "link", "set", "br1", "up")
        for number, name in enumerate(self.hosts, 1):
            port = "h%d" % number
            sh("ip", "-n", self.router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
            sh("ip", "-n", self.router, "link", "set", port, "master", "br1", "up")
            sh("ip", "-n", name, "addr", "add", host_address(number) + "/24", "dev", "eth0")
            sh("ip", "-n", name, "link", "set", "eth0", "up")
            sh("ip", "-n", name, "route", "add", "10.214.0.0/24", "via", ROUTER_HOSTS)
        sh("ip", "netns", "exec", self.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", self.router, "iptables", "-A", "FORWARD", "-j", "NFQUEUE", "--queue-num", "0")
        self.delayline = os.path.join(self.directory, "delayline")
        sh("cc", "-O2", "-o", self.delayline, os.path.join(HERE, "delayline.c"), "-lnetfilter_queue")

    def set_rtt(self, rtt_ms):
        if self.delay is not None:
            self.delay.terminate()
            self.delay.wait(10)
        self.delay = subprocess.Popen(["ip", "netns", "exec", self.router, self.delayline, str(rtt_ms / 2.0)],
                                      stdout=subprocess.PIPE, text=True)
        self.delay.stdout.readline()

    # -- SSH ------------------------------------------------------------------------------
    def start_sshd(self):
        home = os.path.join(self.directory, "home")
        os.makedirs(os.path.join(home, ".ssh"), mode=0o700)
        key = os.path.join(home, ".ssh", "id_ed25519")
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
        shutil.copy(key + ".pub", os.path.join(home, ".ssh", "authorized_keys"))
        host_key = os.path.join(self.directory, "host_key")
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key)
        self.control_dir = os.path.join(self.directory, "cm")
        os.makedirs(self.control_dir)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)     # sshd's privilege separation directory
        with open(os.path.join(home, ".ssh", "config"), "w") as handle:
            handle.write("Host *\n  User root\n  IdentityFile %s\n  StrictHostKeyChecking no\n"
                         "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  KexAlgorithms curve25519-sha256\n"
                         "  BatchMode yes\n" % key)
        # Root gets this plain home and /bin/sh inside the namespaces (ip netns exec binds
        # /etc/netns/NAME/passwd over /etc/passwd there).
        with open("/etc/passwd") as handle:
            passwd = "".join("root:x:0:0:root:%s:/bin/sh\n" % home if line.startswith("root:") else line
                             for line in handle)
        os.chmod(self.directory, 0o755)
        for number, name in enumerate([self.controller] + self.hosts):
            etc = os.path.join("/etc/netns", name)
            os.makedirs(etc, exist_ok=True)     # bench/copies.py puts its per-host directories there first
            self.etc_dirs.append(etc)
            with open(os.path.join(etc, "passwd"), "w") as handle:
                handle.write(passwd)
            if name == self.controller:
                continue
            config = os.path.join(self.directory, "sshd-%d.conf" % number)
            with open(config, "w") as handle:
                handle.write("ListenAddress %s\nHostKey %s\nPermitRootLogin prohibit-password\nUsePAM no\n"
                             "PidFile %s/sshd-%d.pid\nAuthorizedKeysFile %s/.ssh/authorized_keys\n"
                             "StrictModes no\nKexAlgorithms curve25519-sha256\nUseDNS no\nSubsystem sftp internal-sftp\n"
                             % (host_address(number), host_key, self.directory, number, home))
            log = open(os.path.join(self.directory, "sshd-%d.log" % number), "w")
            self.processes.append(subprocess.Popen(["ip", "netns", "exec", name, "/usr/sbin/sshd", "-D", "-e",
                                                    "-f", config], stderr=log))
            log.close()
        self.env = dict(os.environ, HOME=home)

    # -- PCCI -----------------------------------------------------------------------------
    def start_pcci(self, master_extra=None, worker_extra=None):
        """A master on the controller and a worker on each host; ``master_extra`` and
        ``worker_extra(number)`` add settings (bench/copies.py: relays)."""
        key = subprocess.run([sys.executable, "-m", "pcci", "keygen"], capture_output=True, text=True,
                             cwd=REPO, check=True).stdout.strip()
        self.api_port = 8080
        self.master_settings = dict({
            "cluster_key": key, "state_dir": os.path.join(self.directory, "master"), "api_host": "127.0.0.1",
            "api_port": self.api_port, "api_tokens": [TOKEN], "worker_host": CONTROLLER_ADDRESS,
            "log_level": "warning"}, **(master_extra or {}))
        services = [("master", self.controller, self.master_settings)]
        for number, name in enumerate(self.hosts, 1):
            services.append(("worker", name, dict({
                "cluster_key": key, "state_dir": os.path.join(self.directory, "w%d" % number),
                "master_host": CONTROLLER_ADDRESS, "node_name": "n%d" % number, "log_level": "warning"},
                **(worker_extra(number) if worker_extra else {}))))
        for kind, namespace, settings in services:
            self.processes.append(self._start_service(kind, namespace, settings))
        self.master = self.processes[-len(self.hosts) - 1]

    def _start_service(self, kind, namespace, settings):
        path = os.path.join(self.directory, "%s-%s.yaml" % (kind, namespace))
        with open(path, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(settings, handle)          # JSON is YAML
        with open(os.path.join(self.directory, "%s-%s.log" % (kind, namespace)), "ab") as log:
            return subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-m", "pcci", kind,
                                     "--config", path], cwd=self.directory, env=dict(os.environ, PYTHONPATH=REPO),
                                    stderr=log)

    def service_logs(self, kind):
        """{namespace: its log} of the services of this kind (warnings and worse, by default)."""
        logs = {}
        for name in [self.controller] + self.hosts:
            path = os.path.join(self.directory, "%s-%s.log" % (kind, name))
            if os.path.exists(path):
                with open(path, errors="replace") as handle:
                    logs[name] = handle.read()
        return logs

    def restart_master(self, **overrides):
        """The master again, with these settings changed (the workers dial in again)."""
        self.master.send_signal(signal.SIGTERM)
        self.master.wait(30)
        self.master_settings.update(overrides)
        index = self.processes.index(self.master)
        self.master = self.processes[index] = self._start_service("master", self.controller, self.master_settings)

    def limit_controller(self, rate_mbit):
        """The controller's link as a real one of ``rate_mbit`` each way (tc tbf on both ends
        of its veth; the hosts' own links stay unlimited)."""
        burst = max(64 * 1024, rate_mbit * 1000 * 1000 // 8 // 250 * 2)     # two ticks at HZ=250
        for namespace, device in ((self.controller, "eth0"), (self.router, "c0")):
            sh("ip", "netns", "exec", namespace, "tc", "qdisc", "replace", "dev", device, "root", "tbf",
               "rate", "%dmbit" % rate_mbit, "burst", str(burst), "latency", "20ms")

    def close(self):
        for process in self.processes + ([self.delay] if self.delay else []):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes + ([self.delay] if self.delay else []):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        # What the services left behind in their namespaces (sshd's per-connection children,
        # the clients' ControlPersist masters), found by namespace, stopped by PID.
        for name in self.namespaces:
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for name in reversed(self.namespaces):
            sh("ip", "netns", "del", name, check=False)
        for etc in self.etc_dirs:
            shutil.rmtree(etc, ignore_errors=True)


# -- measuring, run inside the controller namespace -----------------------------------------
def time_command(argv, env, runs, expect_lines):
    """Median seconds; each run must succeed and print nothing unexpected (pdsh exits 0
    even when ssh fails, so its output is checked too)."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        samples.append(time.perf_counter() - started)
        if result.returncode != 0 or result.stderr.strip() or len(result.stdout.splitlines()) != expect_lines:
            raise RuntimeError("%s failed: %s" % (argv[0], (result.stdout + result.stderr)[-800:]))
    return statistics.median(samples)


def time_pcci(port, workers, runs):
    """POST /job then GET /pool?wait= on one keep-alive connection, as a script would."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": "Bearer " + TOKEN}

    def call(method, path, body=None):
        connection.request(method, path, json.dumps(body) if body else None, headers)
        return json.loads(connection.getresponse().read())
    samples = []
    for _ in range(runs + 2):
        started = time.perf_counter()
        pool_id = call("POST", "/job", {"cmd": "true", "workers": workers})["id"]
        pool = call("GET", "/pool/%s?wait=60" % pool_id)
        samples.append(time.perf_counter() - started)
        assert pool["exitCode"] == 0 and len(pool["jobs"]) == len(workers), pool
    connection.close()
    return statistics.median(samples[2:])


def measure(args):
    """In the controller namespace: every tool on one host and on all, as JSON on stdout."""
    env = dict(os.environ, HOME=args.home)
    hosts = [host_address(n) for n in range(1, args.hosts + 1)]
    ssh_options = "-o ControlMaster=auto -o ControlPath=%s/%%C -o ControlPersist=300" % args.control_dir
    results = {}
    for label, targets in (("1", hosts[:1]), (str(len(hosts)), hosts)):
        names = ["n%d" % n for n in range(1, len(targets) + 1)]
        listing = ",".join(targets)
        row = {"pcci": time_pcci(args.api_port, names, args.runs)}
        row["pdsh"] = time_command(["pdsh", "-R", "ssh", "-w", listing, "true"],
                                   dict(env, PDSH_SSH_ARGS_APPEND="-q"), args.runs, 0)
        row["clush"] = time_command(["clush", "-w", listing, "true"], env, args.runs, 0)
        for target in targets:      # open the ControlMaster connections first: the best case for SSH
            subprocess.run(["ssh"] + ssh_options.split() + [target, "true"], env=env, check=True, timeout=60)
        # clush interpolates its options: % is written %%.
        row["clush (warm ssh)"] = time_command(["clush", "-o", ssh_options.replace("%", "%%"), "-w", listing, "true"],
                                               env, args.runs, 0)
        if os.path.exists(ANSIBLE):
            inventory = os.path.join(args.home, "inventory-%s" % label)
            with open(inventory, "w") as handle:
                handle.write("[all]\n" + "".join("%s ansible_user=root\n" % t for t in targets))
            ansible_env = dict(env, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
                               ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=300s "
                                                "-o KexAlgorithms=curve25519-sha256",
                               ANSIBLE_FORKS="50", ANSIBLE_LOCAL_TEMP=os.path.join(args.home, "ansible-tmp"))
            command = [ANSIBLE, "all", "-i", inventory, "-m", "command", "-a", "true"]
            subprocess.run(command, env=ansible_env, capture_output=True, timeout=300)   # warm its connections
            row["ansible"] = time_command(command, ansible_env, max(2, args.runs // 2), 2 * len(targets))
        results[label] = row
    print(json.dumps(results))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rtts", default="2,50", help="round-trip times in ms, comma-separated")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--control-dir", help=argparse.SUPPRESS)
    parser.add_argument("--api-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args)
    for tool in ("pdsh", "clush", "cc", "iptables"):
        if not shutil.which(tool):
            sys.exit("ssh_peers: needs %s (./scripts/setup-deps; apt install libnetfilter-queue-dev iptables)" % tool)
    with tempfile.TemporaryDirectory(prefix="pcci-ssh-bench-") as directory:
        lab = Lab(directory, args.hosts)
        try:
            lab.build()
            lab.start_sshd()
            lab.start_pcci()
            table = {}
            for rtt in [float(r) for r in args.rtts.split(",")]:
                lab.set_rtt(rtt)
                time.sleep(3 + rtt / 100.0)          # every worker (re)connected through the delay
                output = subprocess.run(
                    ["ip", "netns", "exec", lab.controller, sys.executable, os.path.abspath(__file__), "--measure",
                     "--hosts", str(args.hosts), "--runs", str(args.runs), "--home", lab.env["HOME"],
                     "--control-dir", lab.control_dir, "--api-port", str(lab.api_port)],
                    capture_output=True, text=True, timeout=1800, env=lab.env)
                if output.returncode != 0:
                    sys.exit("measuring failed: %s" % output.stderr[-3000:])
                table[rtt] = json.loads(output.stdout.strip().splitlines()[-1])
        finally:
            lab.close()
    tools = list(next(iter(table.values()))["1"])
    print("seconds (median of %d)    " % args.runs + "".join("%-20s" % ("RTT %g ms: 1 / %d" % (rtt, args.hosts))
                                                           for rtt in table))
    for tool in tools:
        print("%-26s" % tool + "".join("%-20s" % ("%.3f / %.3f" % (table[rtt]["1"][tool],
                                                                    table[rtt][str(args.hosts)][tool]))
                                         for rtt in table))


if __name__ == "__main__":
    main()
