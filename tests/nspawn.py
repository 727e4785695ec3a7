"""Booted Debian test hosts: systemd-nspawn containers, each in its own network namespace.

Layout (all names carry a per-run prefix, so parallel runs do not collide):

    <p>-sw     switch namespace holding bridge br0
    <p>-NAME   one namespace per host, eth0 = 10.213.7.N/24 on the bridge
    <p>-ctl    the controller namespace: clients (curl) run here; it has no default
               route, so no test traffic can leave the machine

Golden root filesystems are built once per suite with mmdebstrap and cached in
/var/cache/pcci-test; containers boot them with --volatile=overlay, so every boot
starts from the pristine image. Everything made here is removed by Testbed.close().
"""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid

CACHE = "/var/cache/pcci-test"
SUBNET = "10.213.7"
IMAGE_PACKAGES = ("systemd,systemd-sysv,dbus,python3,python3-gevent,python3-bottle,python3-psutil,"
                  "python3-yaml,curl,iproute2,procps,openssh-server,python3-apt,openssl,python3-clustershell,"
                  "python3-prometheus-client,python3-croniter")


def run(*args, check=True, timeout=120, **kwargs):
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout, **kwargs)


def build_debs(out, version=None):
    """Build the .debs with the project's script into `out` (optionally as another version)."""
    env = dict(os.environ, PCCI_DEB_OUT=out)
    if version:
        env["PCCI_DEB_VERSION"] = version
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([os.path.join(repo, "scripts", "build-debs")], check=True, env=env, capture_output=True,
                   timeout=600)
    return out


def golden_image(suite, packages=IMAGE_PACKAGES, arch=None):
    """A cached minbase root filesystem of `suite` with systemd and PCCI's dependencies;
    of another architecture (arm64, armhf) under ``emulation``."""
    digest = hashlib.sha256(("%s|%s|%s" % (suite, packages, arch or "")).encode()).hexdigest()[:12]
    path = os.path.join(CACHE, "%s%s-%s" % (suite, "-" + arch if arch else "", digest))
    if os.path.isdir(os.path.join(path, "usr")):
        return path
    os.makedirs(CACHE, exist_ok=True)
    partial = path + ".partial-%d" % os.getpid()
    shutil.rmtree(partial, ignore_errors=True)
    # A foreign architecture's image comes from the main archive alone: the test needs no
    # security updates, and one inconsistent index on a mirror (seen here for armhf) would
    # stop the whole build.
    sources = ["deb http://deb.debian.org/debian %s main" % suite] if arch else []
    run("mmdebstrap", "--variant=minbase", "--include=" + packages, *(["--arch=" + arch] if arch else []), suite,
        partial, *sources, timeout=1800)
    os.unlink(os.path.join(partial, "etc", "hostname"))
    # Boot quicker and quieter: no getty on a console nobody reads.
    run("systemctl", "--root", partial, "mask", "console-getty.service", "getty@.service", check=False)
    os.replace(partial, path)
    return path


# Raspberry Pi OS's architectures, run by qemu-user (Debian's qemu-user-static).
EMULATORS = {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}
BINFMT = "/proc/sys/fs/binfmt_misc"


def emulation_supported():
    """Why arm64 and armhf programs cannot run here, or None."""
    missing = nspawn_supported()
    if missing:
        return missing
    for name in EMULATORS.values():
        if not os.path.exists("/usr/lib/binfmt.d/%s.conf" % name):
            return "needs qemu-user-static (./scripts/setup-deps installs it)"
    return None


@contextlib.contextmanager
def emulation(arches):
    """arm64 and armhf executables run through qemu-user while inside: binfmt_misc mounted
    and the emulators registered (with the F flag, so containers can use them), then each
    one this registered, and the mount this made, removed again."""
    mounted, registered = False, []
    if not os.path.exists(os.path.join(BINFMT, "register")):
        run("mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT)
        mounted = True
    try:
        for arch in arches:
            name = EMULATORS[arch]
            if os.path.exists(os.path.join(BINFMT, name)):
                continue            # someone else's: left as it is
            with open("/usr/lib/binfmt.d/%s.conf" % name) as handle:
                line = [text.strip() for text in handle if text.strip() and not text.startswith("#")][0]
            with open(os.path.join(BINFMT, "register"), "w") as handle:
                handle.write(line)
            registered.append(name)
        yield
    finally:
        for name in registered:
            with open(os.path.join(BINFMT, name), "w") as handle:
                handle.write("-1")
        if mounted:
            run("umount", BINFMT, check=False)


def nspawn_supported():
    """Why booted containers cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("systemd-nspawn", "mmdebstrap", "nsenter", "ip", "dpkg-buildpackage"):
        if shutil.which(tool) is None:
            return "needs %s" % tool
    if not os.path.isdir("/sys/fs/cgroup"):
        return "needs cgroups"
    return None


def cgroup_pids(directory):
    """Every process in a cgroup and the ones below it."""
    pids = set()
    for root, _dirs, files in os.walk(directory):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(root, "cgroup.procs")) as handle:
                    pids.update(int(line) for line in handle if line.strip())
            except OSError:
                pass
    return pids


def kill_cgroup(directory, attempts=50):
    """SIGKILL what is left in a container's cgroup, by PID, until it is empty: when nspawn
    is gone its init can outlive it (an emulated Pi's systemd halts slowly under qemu, and
    was left running, reparented to PID 1)."""
    for _ in range(attempts):
        pids = cgroup_pids(directory)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def remove_cgroup(directory, attempts=50):
    """Remove a cgroup and the ones the container's systemd made inside it, deepest first."""
    kill_cgroup(directory)
    for _ in range(attempts):
        for root, _dirs, _files in os.walk(directory, topdown=False):
            try:
                os.rmdir(root)
            except OSError:
                pass
        if not os.path.exists(directory):
            return
        time.sleep(0.1)


class Host:
    def __init__(self, testbed, name, address):
        self.testbed = testbed
        self.name = name
        self.address = address
        self.netns = "%s-%s" % (testbed.prefix, name)
        self.process = None
        self.leader = None
        self.cgroups = []

    def boot(self, image, binds=(), boot_timeout=60):
        for hierarchy in ("systemd", "unified"):
            directory = "/sys/fs/cgroup/%s/pcci/%s" % (hierarchy, self.netns)
            if os.path.isdir(os.path.dirname(os.path.dirname(directory))):
                os.makedirs(directory, exist_ok=True)
                self.cgroups.append(directory)
        enter = "".join('echo $$ > %s/cgroup.procs; ' % c for c in self.cgroups)
        command = ["systemd-nspawn", "-D", image, "--boot", "--volatile=overlay", "--register=no",
                   "--keep-unit", "--console=passive", "-M", self.name,
                   "--network-namespace-path=/run/netns/%s" % self.netns]
        command += ["--bind-ro=%s:%s" % (source, target) for source, target in binds]
        self.log_path = os.path.join(self.testbed.directory, "%s.console" % self.name)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(["sh", "-c", enter + 'exec "$@"', "sh"] + command,
                                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.leader = self._wait_for_leader()
        self.wait_booted(boot_timeout)
        return self

    def _wait_for_leader(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("nspawn exited: %s" % open(self.log_path, errors="replace").read()[-2000:])
            children = "/proc/%d/task/%d/children" % (self.process.pid, self.process.pid)
            try:
                pids = open(children).read().split()
            except OSError:
                pids = []
            pids = [pid for pid in pids if os.path.exists("/proc/%s/ns/user" % pid)]     # not a zombie
            if pids:
                return int(pids[0])
            time.sleep(0.05)
        raise RuntimeError("container %s did not start" % self.name)

    def wait_booted(self, timeout=60):
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if not os.path.exists("/proc/%d/ns/user" % self.leader):
                # Observed on a loaded machine: the first child seen was a short-lived one of
                # nspawn's, gone by now (nsenter: "stat of /proc/PID/ns/user failed").
                self.leader = self._wait_for_leader()
            state = self.sh("systemctl is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.2)
        raise RuntimeError("container %s did not boot: %s" % (self.name, state))

    def sh(self, script, check=True, timeout=120, stdin=None):
        """Run a shell script inside the container."""
        result = subprocess.run(["nsenter", "-t", str(self.leader), "-a", "/bin/sh", "-c", script],
                                capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and result.returncode != 0:
            raise AssertionError("in %s: %s\nexit %d\nstdout: %s\nstderr: %s" % (
                self.name, script, result.returncode, result.stdout[-3000:], result.stderr[-3000:]))
        return result

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)   # nspawn asks the container to halt
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for directory in self.cgroups:
            remove_cgroup(directory)
        self.process = None


class Testbed:
    def __init__(self, directory):
        self.directory = directory
        self.prefix = "pcci%s" % uuid.uuid4().hex[:6]
        self.switch = "%s-sw" % self.prefix
        self.namespaces = []
        self.hosts = {}
        self._add_namespace(self.switch)
        run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.switch, "link", "set", "br0", "up")
        self.controller = self._attach("ctl", 254)

    def _add_namespace(self, name):
        run("ip", "netns", "add", name)
        self.namespaces.append(name)

    def _attach(self, name, number):
        netns = "%s-%s" % (self.prefix, name)
        self._add_namespace(netns)
        port = "v%s%d" % (self.prefix[-6:], number)
        run("ip", "-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns)
        run("ip", "-n", self.switch, "link", "set", port, "master", "br0", "up")
        run("ip", "-n", netns, "addr", "add", "%s.%d/24" % (SUBNET, number), "dev", "eth0")
        run("ip", "-n", netns, "link", "set", "eth0", "up")
        run("ip", "-n", netns, "link", "set", "lo", "up")
        return netns

    def host(self, name, image, binds=(), boot_timeout=60):
        """A booted container; an emulated one (another architecture) boots slower."""
        number = len(self.hosts) + 1
        self._attach(name, number)
        host = Host(self, name, "%s.%d" % (SUBNET, number))
        self.hosts[name] = host
        return host.boot(image, binds, boot_timeout)

    def client(self, *args, timeout=60):
        """Run a client command in the controller namespace (no default route)."""
        return run("ip", "netns", "exec", self.controller, *args, check=False, timeout=timeout)

    def api(self, address, method, path, token, body=None, port=8080, cacert=None):
        """A REST call with curl from the controller namespace: (HTTP status or None, JSON or None).
        With ``cacert`` (the master's state_dir/tls/api.crt) over https, as a master off loopback serves."""
        url = "%s://%s:%d%s" % ("https" if cacert else "http", address, port, path)
        command = ["curl", "-sS", "--max-time", "40", "-X", method, "-H", "Authorization: Bearer %s" % token,
                   "-w", "\n%{http_code}", url] + (["--cacert", cacert] if cacert else [])
        if body is not None:
            command += ["-d", json.dumps(body)]
        text, _, status = self.client(*command).stdout.rpartition("\n")
        return (int(status) if status.isdigit() and status != "000" else None), \
            (json.loads(text) if text.strip() else None)

    def close(self):
        for host in self.hosts.values():
            try:
                host.stop()
            except Exception:
                pass
        for name in reversed(self.namespaces):
            run("ip", "netns", "del", name, check=False)
        for parent in ("/sys/fs/cgroup/systemd/pcci", "/sys/fs/cgroup/unified/pcci"):
            try:
                os.rmdir(parent)   # only if no other run is using it
            except OSError:
                pass
