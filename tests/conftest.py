"""Fixtures that start real master and worker processes on loopback and stop them afterwards."""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

import control

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Fresh random keys each run, as 'pcci keygen' makes them: a weak key is refused.
KEY = secrets.token_hex(32)
OTHER_KEY = secrets.token_hex(32)


# The fixtures that start daemons or need root mark the tests that use them (pytest.ini).
FIXTURE_MARKS = {"cluster": ("process",), "module_cluster": ("process",), "mariadb_server": ("process",), "own_mariadb_server": ("process",),
                 "powercut": ("process", "root"), "netbed": ("process", "root")}
# In the fast tier (./scripts/test --fast) a test that starts one of these without its mark
# fails at once, naming the mark it lacks, instead of quietly making the tier slow.
FAST_TIER = os.environ.get("PCCI_TEST_TIER") == "fast"
DAEMON_PROGRAMS = {"mariadbd", "mysqld", "chromium", "chromedriver", "systemd-nspawn", "ip",
                   "mmdebstrap", "ansible-playbook", "prometheus", "dpkg-buildpackage", "ssh", "sshd"}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            for mark in FIXTURE_MARKS.get(fixture, ()):
                item.add_marker(mark)


def starts_daemon(argv):
    """Whether a command line starts a daemon (pcci's, a database, a browser, a container)."""
    argv = [str(part) for part in (argv if isinstance(argv, (list, tuple)) else [argv])]
    program = os.path.basename(argv[0]) if argv else ""
    daemon = argv[1:3] == ["-m", "pcci"] and argv[3:4] in (["master"], ["worker"])
    return program in DAEMON_PROGRAMS or program.startswith("qemu-") or daemon


if FAST_TIER:
    _popen_init = subprocess.Popen.__init__

    def _guarded_popen_init(self, args, *rest, **kwargs):
        if starts_daemon(args):
            pytest.fail("a fast-tier test started %r: mark it process (pytest.ini)" % (args,), pytrace=False)
        _popen_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = _guarded_popen_init


# Ports for the services tests start come from below the kernel's ephemeral range
# (32768-60999 by default): a port bind(0) handed out could be handed out again, to
# chromedriver or any client socket, before the service binds it (seen once in ~1,000 runs:
# /health answered by chromedriver). Each is handed out once per test run.
TEST_PORTS = range(20000, 32000)
_handed_out = set()


def free_port():
    import random
    for _ in range(200):
        port = random.choice(TEST_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:           # the range is crowded: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dial_worker_port(port, host="127.0.0.1", timeout=10):
    """A raw TLS connection to a master's worker port, as a worker makes it (no CA check: the
    handshake proofs bind the certificate): (socket, fingerprint of the master's certificate)."""
    import ssl
    from pcci import tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock = context.wrap_socket(socket.create_connection((host, port), timeout=timeout))
    return sock, tls.peer_fingerprint(sock)


def self_signed(directory, name="test"):
    """A fresh self-signed certificate and key made the way the master makes its own."""
    from pcci import tls
    cert, key = os.path.join(directory, "%s.crt" % name), os.path.join(directory, "%s.key" % name)
    tls.ensure_certificate(cert, key, name)
    return cert, key


def stop_process(process, grace=15):
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def small_tmpfs(tmp_path, size):
    """A tmpfs of ``size`` (mount's notation, e.g. "4m") under ``tmp_path``, unmounted after:
    a disk that fills. Skips the test when not root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = tmp_path / "small-disk"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(path)], check=True, timeout=30)
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition", sleep=time.sleep):
    """Poll a predicate, bounded in time; return its first truthy value. ``sleep`` is
    gevent.sleep where the master runs in this process (tests/harness.py)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Service:
    """One pcci process, its config and its log."""

    def __init__(self, kind, directory, settings):
        self.kind = kind
        self.directory = directory
        self.settings = settings
        self.config_path = os.path.join(directory, "%s.yaml" % kind)
        self.log_path = os.path.join(directory, "%s.log" % kind)
        self.process = None
        self.prefix = []            # e.g. ["ip", "netns", "exec", NAME] to start it in a namespace
        self.python_path = []       # directories ahead of the repository on its PYTHONPATH
        self.env = {}               # more environment variables (NOTIFY_SOCKET, say)
        self.module = "pcci"        # run as python -m MODULE KIND --config PATH

    def start(self):
        os.makedirs(self.directory, exist_ok=True)
        with open(self.config_path, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)     # it holds the cluster key: refused if all may read it
            yaml.safe_dump(self.settings, handle)
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(self.python_path + [REPO]), **self.env)
        self.process = subprocess.Popen(self.prefix + [sys.executable, "-m", self.module, self.kind, "--config",
                                                       self.config_path],
                                        stdout=log, stderr=log, env=env, cwd=self.directory)   # jobs run here, not in the repo
        log.close()
        return self

    def signal(self, signum):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout=15):
        stop_process(self.process, grace=timeout)

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


class MasterCalls:
    """What a test asks a master through its API, given ``api`` and ``wait_until`` (a
    ``Cluster`` of processes, or tests/harness.py's master in the test's process)."""

    wait_until = staticmethod(wait_until)

    def wait_online(self, *names, timeout=15):
        def all_online():
            online = {w["name"] for w in self.api("GET", "/workers")[1]["workers"] if w["online"]}
            return set(names) <= online
        self.wait_until(all_online, timeout=timeout, what="workers %s online" % (names,))

    def run(self, cmd, workers=None, wait=30, **fields):
        """Submit a pool and wait for it to finish; returns the finished pool."""
        body = dict(fields, cmd=cmd)
        if workers is not None:
            body["workers"] = workers
        status, submitted = self.api("POST", "/job", body)
        assert status == 202, submitted
        status, pool = self.api("GET", "/pool/%s?wait=%s" % (submitted["id"], wait))
        assert status == 200, pool
        assert pool["status"] == "done", pool
        return pool


def as_master_without(cluster, directory, feature):
    """Make ``cluster``'s master an older release that does not name ``feature`` (a
    protocol.FEATURES attribute name): a sitecustomize drops it at start."""
    site = directory / "old-master"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "from pcci import protocol\n"
        "protocol.FEATURES = tuple(n for n in protocol.FEATURES if n != protocol.%s)\n" % feature)
    cluster.python_path = [str(site)]


class Cluster(MasterCalls):
    """A master and its workers as real processes; talk to them as a user would."""

    def __init__(self, base):
        self.base = str(base)
        self.api_port = free_port()
        self.worker_port = free_port()
        self.token = None
        self.master = None
        self.workers = {}
        self.python_path = []       # for the master: directories ahead of the repository

    # -- processes ------------------------------------------------------------------
    def master_settings(self, **overrides):
        settings = {"cluster_key": KEY, "state_dir": os.path.join(self.base, "master-state"),
                    "api_port": self.api_port, "worker_host": "127.0.0.1", "worker_port": self.worker_port,
                    "heartbeat_timeout": "3s", "log_level": "debug"}
        settings.update(overrides)
        return settings

    def start_master(self, **overrides):
        settings = self.master_settings(**overrides)
        first = (settings.get("api_tokens") or [None])[0]
        self.token = first["token"] if isinstance(first, dict) else first
        self.master = Service("master", os.path.join(self.base, "master"), settings)
        self.master.python_path = self.python_path
        self.master.start()
        wait_until(lambda: self.master.process.poll() is not None or self._healthy(), what="master /health")
        assert self.master.process.poll() is None, self.master.log()
        return self.master

    def _healthy(self):
        try:
            return self.api("GET", "/health")[0] == 200
        except (OSError, ValueError):         # not up yet, or something else answers there
            return False

    def start_worker(self, name, wait=True, module="pcci", prefix=(), python_path=(), **overrides):
        """A worker process; ``module`` other than pcci is one of tests/ that runs it (faulty_worker);
        ``prefix`` goes before its command (Service.prefix), ``python_path`` ahead of the repository."""
        settings = {"cluster_key": KEY, "state_dir": os.path.join(self.base, "worker-%s" % name),
                    "master_host": "127.0.0.1", "master_port": self.worker_port, "node_name": name,
                    "heartbeat_interval": "0.5s", "link_timeout": "3s", "reconnect_min": "0.1s",
                    "reconnect_max": "0.5s", "kill_grace": "1s", "log_level": "debug"}
        settings.update(overrides)
        worker = Service("worker", os.path.join(self.base, "worker-%s" % name), settings)
        if module != "pcci":
            worker.module, worker.python_path = module, [os.path.join(REPO, "tests")]
        worker.prefix = list(prefix)
        worker.python_path = worker.python_path + list(python_path)
        worker.start()
        self.workers[name] = worker
        if wait:
            self.wait_online(name)
        return worker

    def wait_running(self, pool_id, *names, timeout=15):
        """Until each named worker reports its job of the pool running: the run frame has
        arrived, so cutting a link or killing the master now cannot lose it on the way."""
        def running():
            workers = {w["name"]: w for w in self.api("GET", "/workers")[1]["workers"]}
            return all("%s/%s" % (pool_id, name) in workers[name]["runningJobs"] for name in names)
        wait_until(running, timeout=timeout, what="pool %s running on %s" % (pool_id, names))

    def stop(self):
        for worker in self.workers.values():
            worker.stop()
        if self.master:
            self.master.stop()

    # -- HTTP ---------------------------------------------------------------------------
    def api(self, method, path, body=None, token="default", raw=None, headers=None, timeout=30):
        """(status, parsed JSON) for one call; body is JSON-encoded unless raw bytes are given."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.api_port, path), data=data,
                                         method=method, headers=headers or {})
        token = self.token if token == "default" else token
        if token:
            request.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture
def cluster(tmp_path):
    made = Cluster(tmp_path)
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def in_process(tmp_path):
    """A real master in the test's own process, with fake workers (tests/harness.py): the
    fast tier's way to test what the master decides."""
    from harness import InProcessMaster
    made = None
    def start(**overrides):
        nonlocal made
        made = InProcessMaster(tmp_path, **overrides)
        return made
    try:
        yield start
    finally:
        if made is not None:
            made.stop()


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory):
    """One cluster for a whole test module: for tests that only read what it holds (a
    parametrized case each would otherwise start its own master and workers)."""
    made = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield made
    finally:
        made.stop()


def cgroup_base():
    """A cgroup v2 directory of the test's own, or None where there is none to make."""
    from pcci.worker import cgroups as job_cgroups_module   # here: bench/ scripts use this file too
    with open("/proc/self/mountinfo") as handle:
        mount = job_cgroups_module.v2_mount(handle.read())
    if mount is None or os.geteuid() != 0:
        return None
    base = os.path.join(mount, "pcci-test-%d" % os.getpid())
    os.makedirs(base, exist_ok=True)
    return base


def remove_cgroup_tree(base):
    """Kill what is left in a test's cgroup and its job cgroups, then remove them."""
    from pcci.worker import cgroups as job_cgroups_module
    job_cgroups = job_cgroups_module.JobCgroups(base)
    for path in job_cgroups.left_over().values():
        job_cgroups.signal(path, signal.SIGKILL)
        wait_until(lambda: job_cgroups.remove(path), timeout=5, what="job cgroup removed")
    os.rmdir(base)


def pids_alive(pids):
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        with open("/proc/%d/stat" % pid) as handle:
            if handle.read().split(")")[-1].split()[0] != "Z":
                alive.append(pid)
    return alive


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class PowerCutMount:
    """tests/powercut.py mounted at `path`: a filesystem whose power a test can cut."""

    def __init__(self, base):
        self.base = str(base)
        self.live, self.durable = os.path.join(self.base, "live"), os.path.join(self.base, "durable")
        self.path, self.control = os.path.join(self.base, "mnt"), os.path.join(self.base, "control.sock")
        for directory in (self.live, self.durable, self.path):
            os.makedirs(directory, exist_ok=True)
        self.log_path = os.path.join(self.base, "powercut.log")
        with open(self.log_path, "ab") as log:
            # Always Debian's python3: the harness uses Debian's python3-fusepy, whatever runs the tests.
            self.process = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "tests", "powercut.py"),
                                             self.live, self.durable, self.path, self.control],
                                            stdout=log, stderr=log)
        try:
            wait_until(lambda: self.process.poll() is not None or (os.path.ismount(self.path)
                                                                  and os.path.exists(self.control)),
                       timeout=20, what="the power-cut filesystem mounted")
        except AssertionError:
            self.close()
            raise
        if self.process.poll() is not None:
            raise AssertionError("powercut.py exited: " + open(self.log_path).read()[-2000:])

    def cut(self):
        """Drop everything not fsync'd. Kill the processes using the mount first."""
        assert control.command(self.control, "cut") == "ok"

    def close(self):
        """Stop the filesystem (libfuse unmounts on SIGTERM); unmount by hand if it could not."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if os.path.ismount(self.path):
            subprocess.run(["umount", "-l", self.path], check=False, timeout=30)


def powercut_supported():
    """None if this machine can mount the power-cut filesystem, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if subprocess.run(["/usr/bin/python3", "-c", "import fusepy"], capture_output=True).returncode != 0:
        return "Debian's python3-fusepy is not installed (./scripts/setup-deps installs it)"
    return None


@pytest.fixture
def powercut(tmp_path):
    reason = powercut_supported()
    if reason:
        pytest.skip("power-cut filesystem: %s" % reason)
    mount = PowerCutMount(tmp_path / "powercut")
    try:
        yield mount
    finally:
        mount.close()


@pytest.fixture
def netbed(tmp_path):
    """Network namespaces on a bridge (tests/nspawn.py); services started in them with
    start_in_namespace are stopped with the bed."""
    import nspawn
    reason = nspawn.nspawn_supported()
    if reason:
        pytest.skip("network namespaces: %s" % reason)
    bed = nspawn.Testbed(str(tmp_path))
    services = []
    bed.services = services
    try:
        yield bed
    finally:
        for service in services:
            service.stop()
        bed.close()


def start_in_namespace(bed, netns, kind, directory, settings):
    service = Service(kind, directory, settings)
    service.prefix = ["ip", "netns", "exec", netns]
    service.start()
    bed.services.append(service)
    return service


@pytest.fixture(scope="session")
def mariadb_server():
    """One real MariaDB server for the session's store tests; each test takes a fresh database."""
    import mariadb
    pytest.importorskip("pymysql")
    with mariadb.throwaway() as server:
        yield server


@pytest.fixture(autouse=True)
def event_loop_time_now():
    """gevent's loop keeps the time it last looked at: a test that blocked this process
    for long (time.sleep beside real masters and workers) would leave it behind, and the
    next in-process test's gevent timeouts, counted from that old time, would fire at
    once. Looked at again before each test, when this process has a loop at all."""
    if "gevent" in sys.modules:
        from gevent._hub_local import get_hub_if_exists
        hub = get_hub_if_exists()
        if hub is not None:
            hub.loop.update_now()
    yield
