"""How the CLI prints results (pure): identical outputs grouped, as `clush -b` does, and
the nodes of a group folded into ranges (node[1-3,5]) as clush prints them."""

from typing import List, NamedTuple, Optional, Tuple

from ..states import JobState, PoolStatus

# A job that never ran (offline, unknown, lost) has no exit code: report it as ssh and pdsh do.
NO_EXIT_CODE = 255
# A job's part of the exit status when it did not end by its own exit (pcci(1), EXIT STATUS):
# whatever its shell's exit code (a background process can keep a job whose shell exited 0
# until its timeout), it is never 0.
TIMED_OUT_STATUS = 124      # as timeout(1)
KILLED_STATUS = 137         # 128 + SIGKILL, as a shell reports a killed command
STATE_STATUS = {JobState.TIMED_OUT.value: TIMED_OUT_STATUS, JobState.KILLED.value: KILLED_STATUS,
                JobState.LOST.value: NO_EXIT_CODE, JobState.OFFLINE.value: NO_EXIT_CODE,
                JobState.UNKNOWN_WORKER.value: NO_EXIT_CODE, JobState.SKIPPED.value: NO_EXIT_CODE}


def group_jobs(jobs, with_stderr=True):
    """[(names, job)] where names share stdout (and stderr, ``with_stderr``), state and exit
    code; in listed order."""
    groups = {}
    for name, job in jobs.items():
        key = (job["stdout"], job["stderr"] if with_stderr else None, job["state"], job["exitCode"],
               job.get("signal"), bool(job.get("stdoutTruncated")))
        groups.setdefault(key, ([], job))[0].append(name)
    return list(groups.values())


def describe(job):
    if job["state"] in ("succeeded", "failed") and job["exitCode"] is not None:
        return "exit %s" % job["exitCode"]
    if job.get("signal"):
        return "%s, %s, exit %s" % (job["state"], job["signal"], job["exitCode"])
    return job["state"]


class Display(NamedTuple):
    """How `pcci run` shows a finished pool (its options -B, -L, -N, -q, --outdir)."""
    merge_stderr: bool = False      # -B: stderr grouped with stdout
    line_mode: bool = False         # -L: "node: line", sorted by node, no headers
    prefix: bool = True             # -N turns it off: lines without "node: "
    quiet: bool = False             # -q: no progress, no notices
    outdir: Optional[str] = None


def render(pool, display: Display) -> Tuple[str, str]:
    """(text for stdout, text for stderr) as ``display`` says."""
    if display.line_mode:
        jobs = dict(sorted(pool["jobs"].items(), key=lambda item: natural_key(item[0])))
        return ("\n".join(prefixed(jobs, "stdout", display.prefix)),
                "\n".join(prefixed(jobs, "stderr", display.prefix)))
    out, _ = render_pool(pool, display.merge_stderr)
    return out, "" if display.merge_stderr else "\n".join(prefixed(pool["jobs"], "stderr", display.prefix))


def natural_key(name: str):
    """pi2 before pi10, as clush sorts nodes."""
    import re
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def render_pool(pool, merge_stderr: bool = False) -> Tuple[str, str]:
    """(text for stdout, text for stderr), as ``clush -b`` prints: each group of nodes with
    the same output under one header on stdout; standard error stays on stderr, each line
    prefixed with its node. ``merge_stderr`` (``clush -B``): stderr is gathered with stdout."""
    from ..targets import fold      # here: a command that prints no pool never loads it
    lines = []
    for names, job in group_jobs(pool["jobs"], with_stderr=merge_stderr):
        header = "%s (%s)" % (fold(names), describe(job))
        lines += ["-" * 15, header, "-" * 15]
        if job["stdout"]:
            lines.append(job["stdout"].rstrip("\n"))
        if merge_stderr and job["stderr"]:
            lines.append(job["stderr"].rstrip("\n"))
        for stream in ("stdout", "stderr") if merge_stderr else ("stdout",):
            if job.get(stream + "Truncated"):
                lines.append("[%s truncated]" % stream)
    errors = [] if merge_stderr else prefixed(pool["jobs"], "stderr")
    return "\n".join(lines), "\n".join(errors)


def prefixed(jobs, stream: str, prefix: bool = True) -> List[str]:
    """Each line of one stream of every job, "node: line", as pdsh and clush print them."""
    lines = []
    lead = (lambda name: name + ": ") if prefix else (lambda name: "")
    for name, job in jobs.items():
        text = job[stream]
        lines += [lead(name) + line for line in text.rstrip("\n").split("\n")] if text else []
        if job.get(stream + "Truncated"):
            lines.append("%s[%s truncated]" % (lead(name), stream))
    return lines


def job_status(job) -> int:
    """One job's part of the exit status: 0 only for a job that succeeded; a failed job's
    exit code (255 without one: it could not start, a copy was refused); a fixed status
    for each state that did not end by the job's own exit (STATE_STATUS)."""
    state = job["state"]
    if state == JobState.SUCCEEDED.value:
        return 0
    if state in STATE_STATUS:
        return STATE_STATUS[state]
    code = job["exitCode"]
    return NO_EXIT_CODE if code is None else min(max(code, 1), 255)


def pool_exit_status(pool) -> int:
    """The largest status of the pool's jobs (job_status): 0 when every job succeeded."""
    return max((job_status(job) for job in pool["jobs"].values()), default=0)


# `pcci pool ID` on a pool still running: no verdict yet, try again later (EX_TEMPFAIL),
# rather than a job status it may not keep.
STILL_RUNNING_STATUS = 75


def shown_pool_status(pool) -> int:
    """`pcci pool`'s status: an ended pool's as `pcci run` gives it (pool_exit_status)."""
    if pool["status"] != PoolStatus.DONE.value:
        return STILL_RUNNING_STATUS
    return pool_exit_status(pool)


def render_table(rows, columns):
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(columns, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
