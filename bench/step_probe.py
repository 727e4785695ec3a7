"""Run a pcci master or worker with a timestamp written at each step of a job (bench only).

    PCCI_STEPS_FILE=/tmp/steps python3 -m step_probe master|worker --config PATH

Wraps a few methods of the running process (never the code under test's files) and
appends "STEP MONOTONIC_NS" lines to PCCI_STEPS_FILE: CLOCK_MONOTONIC is one clock for
every process of the machine, so the master's, the worker's and the client's lines
line up. bench/job_steps.py starts the processes this way and reads the file.
"""

import functools
import os
import sys
import time

_out = os.open(os.environ["PCCI_STEPS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def mark(step):
    os.write(_out, b"%s %d\n" % (step.encode(), time.monotonic_ns()))


def around(cls, name, before=None, after=None):
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        if before:
            mark(before)
        try:
            return original(*args, **kwargs)
        finally:
            if after:
                mark(after)
    setattr(cls, name, wrapped)


def probe_master():
    from pcci.master import pool_service, store
    around(pool_service.PoolService, "submit", "m.submit_in", "m.submit_answered")
    around(store.Store, "save", "m.commit_start", "m.commit_end")
    around(pool_service.PoolService, "_send", "m.frame_sent")
    around(pool_service.PoolService, "on_result", "m.result_in")
    around(pool_service.PoolService, "_ended", "m.pool_ended")


def probe_worker():
    from pcci import link
    from pcci.worker import job_process, master_link, outbox, runner, spool
    around(master_link.MasterLink, "_run", "w.run_in")
    around(runner.Runner, "_spawn_in", "w.spawn_start", "w.spawn_end")
    around(job_process, "wait_exit", None, "w.exit_seen")
    around(outbox.Outbox, "deliver", "w.deliver")
    around(link.Link, "send_payload", None, "w.result_queued")
    around(spool.Spool, "save", "w.spool_start", "w.spool_synced")
    around(master_link.MasterLink, "_acknowledged", "w.ack_in")

if __name__ == "__main__":
    {"master": probe_master, "worker": probe_worker}[sys.argv[1]]()
    from pcci.cli.main import main
    sys.exit(main())
