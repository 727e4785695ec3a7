#!/usr/bin/env python3
"""A queue on top of PCCI: run many commands across the cluster without overloading it.

    queue.py -f commands.txt                 # one command a line
    queue.py "make -C /src/a" "make -C /src/b" ...
    queue.py --room --max-cpu 70 --max-mem 80 -f commands.txt

Default: each online worker runs one job at a time and gets the next command when its
job is done. With --room, a worker may take a further job (up to --per-worker) while
its latest heartbeat says CPU and memory are under the thresholds. Prints progress,
then every command's node, exit code and output; exits 1 if any command failed.
"""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pcci.client import Master, PcciError  # noqa: E402


class Inbox:
    """Finished jobs from the waiting threads. (This file is queue.py, so it cannot import queue.)"""

    def __init__(self):
        self.items = []
        self.ready = threading.Condition()

    def put(self, item):
        with self.ready:
            self.items.append(item)
            self.ready.notify()

    def get(self, timeout):
        with self.ready:
            self.ready.wait_for(lambda: self.items, timeout)
            return self.items.pop(0) if self.items else None


def has_room(worker, running, per_worker, max_cpu, max_mem):
    """May this worker take another job? (pure)"""
    if running == 0:
        return True
    if running >= per_worker:
        return False
    cpu, mem = worker.stats.get("cpuPercent"), (worker.stats.get("memory") or {}).get("percent")
    return cpu is not None and mem is not None and cpu < max_cpu and mem < max_mem


def run_queue(master, commands, room=False, per_worker=2, max_cpu=70.0, max_mem=80.0, out=sys.stderr):
    pending = list(enumerate(commands))
    running = {}                 # worker -> number of jobs it runs now
    finished = Inbox()
    results = [None] * len(commands)
    limit = per_worker if room else 1

    def wait(index, worker, pool):
        try:
            finished.put((index, worker, pool.wait().jobs[worker], None))
        except PcciError as exc:
            finished.put((index, worker, None, str(exc)))

    done = 0
    while done < len(commands):
        workers = [w for w in master.workers() if w.online]
        if not workers and not running:
            raise PcciError("no worker is online")
        for worker in workers:
            name = worker.name
            while pending and has_room(worker, running.get(name, 0), limit, max_cpu, max_mem):
                index, command = pending.pop(0)
                pool = master.run(command, [name])
                running[name] = running.get(name, 0) + 1
                print("[start] %s <- %s" % (name, command), file=out)
                threading.Thread(target=wait, args=(index, name, pool), daemon=True).start()
                if not room:
                    break
        item = finished.get(timeout=2.0)
        if item is None:
            continue     # look at the workers again: one may have joined or found room
        index, worker, job, error = item
        running[worker] -= 1
        done += 1
        results[index] = {"command": commands[index], "node": worker, "state": job.state if job else "error",
                          "exitCode": job and job.exit_code, "stdout": job.stdout if job else "",
                          "stderr": job.stderr if job else error,
                          "startTime": job and job.start_time, "endTime": job and job.end_time}
        print("[%d/%d] %s: %s (exit %s)" % (done, len(commands), worker, commands[index], job and job.exit_code),
              file=out)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commands", nargs="*")
    parser.add_argument("-f", "--file", help="read commands from this file, one a line")
    parser.add_argument("--room", action="store_true", help="allow more than one job per worker when it has room")
    parser.add_argument("--per-worker", type=int, default=2, help="with --room: most jobs on one worker")
    parser.add_argument("--max-cpu", type=float, default=70.0, help="with --room: CPU %% under which to add a job")
    parser.add_argument("--max-mem", type=float, default=80.0, help="with --room: memory %% under which to add a job")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--url")
    parser.add_argument("--token")
    args = parser.parse_args(argv)
    commands = list(args.commands)
    if args.file:
        with open(args.file, encoding="utf-8") as handle:
            commands += [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    if not commands:
        parser.error("no commands given")
    master = Master.from_environment(args.url, args.token)
    started = time.monotonic()
    try:
        results = run_queue(master, commands, args.room, args.per_worker, args.max_cpu, args.max_mem)
    except PcciError as exc:
        print("queue: %s" % exc, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print("== %s on %s: %s, exit %s" % (result["command"], result["node"], result["state"], result["exitCode"]))
            for stream in ("stdout", "stderr"):
                if result[stream]:
                    print(result[stream].rstrip("\n"))
    failed = [r for r in results if r["exitCode"] != 0]
    print("%d command(s) in %.1fs, %d failed" % (len(results), time.monotonic() - started, len(failed)),
          file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
