"""A cgroup (v2) for each job, so kill, timeout and clean-up reach every process it
started -- daemons that left the job's process group and session included.

The worker makes each job's cgroup a child of its own (under systemd the unit's
``Delegate=yes`` hands it that subtree). A job's shell moves itself into its cgroup
with a builtin write before it runs the command (``shell_prefix``): no extra process,
so the spawn stays at the vfork floor. The job ends when its cgroup is empty; kill is
``cgroup.kill`` (Linux >= 5.14; before that, SIGKILL to each listed process).

Without a cgroup of its own to delegate from (the quickstart, a shell session, an
unprivileged worker without ``Delegate=yes``), the worker falls back to process
groups and the ``PCCI_JOB_ID`` marker (``pcci.worker.orphans``); ``detect`` says
which, in one log line.

The parsing functions are pure; ``JobCgroups`` does the file I/O.
"""

import errno
import hashlib
import logging
import os
import signal

log = logging.getLogger(__name__)

PROCS_VARIABLE = "PCCI_CGROUP_PROCS"
PREFIX = "pcci-job-"
# The shell's exit status when it could not enter its cgroup (the job then never ran).
ENTER_FAILED_STATUS = 125


def v2_mount(mountinfo):
    """Where the cgroup2 hierarchy is mounted, from /proc/self/mountinfo's text; None if nowhere."""
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return left.split()[4]
    return None


def own_path(proc_cgroup):
    """This process's cgroup2 path ('/system.slice/pcci-worker.service'), from /proc/self/cgroup."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def shell_prefix():
    """Shell code that moves the job's shell into its cgroup before the command runs."""
    return 'echo 0 >"$%s" || exit %d; ' % (PROCS_VARIABLE, ENTER_FAILED_STATUS)


def cgroup_name(job_id):
    """A job's cgroup directory name: readable (the pool id) and unique (a digest of the
    whole job id), whatever characters the node name holds."""
    digest = hashlib.sha256(job_id.encode("utf-8", "replace")).hexdigest()[:12]
    return "%s%s-%s" % (PREFIX, job_id.partition("/")[0][:64], digest)


class JobCgroups:
    """The job cgroups below one directory (the worker's own cgroup)."""

    def __init__(self, base):
        self.base = base

    def path(self, job_id):
        return os.path.join(self.base, cgroup_name(job_id))

    def create(self, job_id):
        path = self.path(job_id)
        os.mkdir(path)
        return path

    def environment(self, path):
        return {PROCS_VARIABLE: os.path.join(path, "cgroup.procs")}

    def populated(self, path):
        try:
            with open(os.path.join(path, "cgroup.events")) as handle:
                return "populated 1" in handle.read()
        except FileNotFoundError:
            return False

    def pids(self, path):
        try:
            with open(os.path.join(path, "cgroup.procs")) as handle:
                return [int(line) for line in handle if line.strip()]
        except FileNotFoundError:
            return []

    def signal(self, path, signum):
        """Send a signal to every process in the cgroup; SIGKILL uses cgroup.kill where there is one."""
        if signum == signal.SIGKILL:
            try:
                with open(os.path.join(path, "cgroup.kill"), "w") as handle:
                    handle.write("1")
                return
            except FileNotFoundError:
                if not os.path.isdir(path):
                    return
                # Linux < 5.14: no cgroup.kill; signal each process instead.
        for pid in self.pids(path):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def remove(self, path):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                return False
            raise

    def left_over(self):
        """Job cgroups a previous run of this worker left behind: {name: path}."""
        try:
            names = [n for n in os.listdir(self.base) if n.startswith(PREFIX)]
        except FileNotFoundError:
            return {}
        return {name: os.path.join(self.base, name) for name in names
                if os.path.isdir(os.path.join(self.base, name))}


def detect(mode, read=lambda path: open(path).read(), pid=None):
    """JobCgroups when jobs can have cgroups, else None; mode is 'auto', 'on' or 'off'.
    'auto' uses them when this process sits alone in a cgroup it may write to (what
    systemd's Delegate=yes gives); 'on' raises RuntimeError saying why it cannot."""
    if mode == "off":
        log.info("job cgroups are off (job_cgroups: off): kill reaches the job's process group "
                 "and processes carrying its PCCI_JOB_ID")
        return None
    why_not, base = _why_not(read, pid or os.getpid())
    if why_not is None:
        log.info("each job runs in its own cgroup under %s", base)
        return JobCgroups(base)
    if mode == "on":
        raise RuntimeError("job_cgroups is on, but %s" % why_not)
    log.info("jobs run without cgroups (%s): kill reaches the job's process group and processes "
             "carrying its PCCI_JOB_ID; see job_cgroups in docs/configuration.md", why_not)
    return None


def _why_not(read, pid):
    try:
        mount = v2_mount(read("/proc/self/mountinfo"))
        relative = own_path(read("/proc/self/cgroup"))
    except OSError as exc:
        return "cannot read /proc: %s" % exc, None
    if mount is None or relative is None:
        return "there is no cgroup v2 hierarchy", None
    if relative == "/":
        return "the worker is in the root cgroup, which is not delegated to it", None
    base = os.path.join(mount, relative.lstrip("/"))
    if not os.access(base, os.W_OK):
        return "its cgroup %s is not delegated to it (under systemd: Delegate=yes)" % base, None
    try:
        others = [p for p in read(os.path.join(base, "cgroup.procs")).split() if int(p) != pid]
    except OSError as exc:
        return "cannot read %s/cgroup.procs: %s" % (base, exc), None
    if others:
        return "its cgroup %s holds %d other process(es), so it is not the worker's own" % (base, len(others)), None
    return None, base
