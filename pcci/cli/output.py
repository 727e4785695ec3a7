"""How the CLI prints results (pure): identical outputs grouped, as `clush -b` does, and
the nodes of a group folded into ranges (node[1-3,5]) as clush prints them."""

from ..targets import fold

# A job that never ran (offline, unknown, lost) has no exit code: report it as ssh and pdsh do.
NO_EXIT_CODE = 255


def group_jobs(jobs):
    """[(names, job)] where names share stdout, stderr, state and exit code; in listed order."""
    groups = {}
    for name, job in jobs.items():
        key = (job["stdout"], job["stderr"], job["state"], job["exitCode"], job.get("signal"))
        groups.setdefault(key, ([], job))[0].append(name)
    return list(groups.values())


def describe(job):
    if job["state"] in ("succeeded", "failed") and job["exitCode"] is not None:
        return "exit %s" % job["exitCode"]
    if job.get("signal"):
        return "%s, %s, exit %s" % (job["state"], job["signal"], job["exitCode"])
    return job["state"]


def render_pool(pool):
    lines = []
    for names, job in group_jobs(pool["jobs"]):
        header = "%s (%s)" % (fold(names), describe(job))
        lines += ["-" * 15, header, "-" * 15]
        if job["stdout"]:
            lines.append(job["stdout"].rstrip("\n"))
        if job["stderr"]:
            lines.append(job["stderr"].rstrip("\n"))
        for stream in ("stdout", "stderr"):
            if job.get(stream + "Truncated"):
                lines.append("[%s truncated]" % stream)
    return "\n".join(lines)


def pool_exit_status(pool):
    """The largest exit code; 255 if some job never gave one."""
    codes = [job["exitCode"] if job["exitCode"] is not None else NO_EXIT_CODE for job in pool["jobs"].values()]
    return min(max(codes), 255) if codes else 0


def render_table(rows, columns):
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(columns, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
