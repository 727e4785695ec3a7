"""Jobs left running by a worker that died: recorded while they run, killed at the next start.

Each job runs in its own session, so it outlives a worker that is SIGKILLed or
OOM-killed. The runner notes each job's process group (pid and kernel start time, so a
reused pid is never mistaken for it) in ``state_dir/running/``; a starting worker kills
the groups still listed, and the master, told at sync that they are not running, marks
them lost -- which is then true. (Under systemd the unit's cgroup does this too.)
"""

import logging
import os
import signal
from urllib.parse import quote, unquote

log = logging.getLogger(__name__)


def process_start_time(pid):
    """The kernel's start time of a process (clock ticks since boot), or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])      # field 22 of stat; the first two were split off with ")"


class RunningRecord:
    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)

    def _path(self, job_id):
        return os.path.join(self.directory, quote(job_id, safe=""))

    def add(self, job_id, pid):
        with open(self._path(job_id), "w") as handle:
            handle.write("%d %s\n" % (pid, process_start_time(pid)))

    def remove(self, job_id):
        try:
            os.unlink(self._path(job_id))
        except FileNotFoundError:
            pass

    def reap(self, kill_group=os.killpg):
        """Kill every recorded job group still alive; return the job ids that were killed."""
        killed = []
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            try:
                with open(path) as handle:
                    pid_text, started = handle.read().split()
                pid = int(pid_text)
            except (OSError, ValueError):
                pid, started = None, None
            if pid is not None and str(process_start_time(pid)) == started:
                try:
                    kill_group(pid, signal.SIGKILL)
                    killed.append(unquote(name))
                    log.warning("killed job %s (process group %d), left running by a previous worker",
                                unquote(name), pid)
                except (ProcessLookupError, PermissionError):
                    pass
            os.unlink(path)
        return killed
