"""What the pcci command costs on its own: from its start to its first byte on the wire,
and to its end against a master that answers at once. Two code trees, alternated.

    python3 bench/cli_start.py --before /path/to/other/tree [--samples 31] [--runs 2]

A stand-in master on loopback (a thread here) takes each connection, notes when the
request's first byte came, and answers POST /job?wait= with a finished pool (one job, or
20 for a target of every worker) the
moment the request is whole, chunked as the master answers it. Rows, per tree, median
of SAMPLES (trees alternated sample by sample, RUNS rounds):

* ``python3 -c pass``: the interpreter's floor (the same for both trees);
* first byte: process start to the request's first byte (interpreter, imports, parsing);
* whole command: process start to exit, the pool printed (the CLI's own cost of a run);
* -a: ``pcci run -a -- true``, answered with a pool of 20 jobs (their names folded);
* a closed port: to its exit 69 (what bench/delay_cli.py's row of that name times);
* CPU: the user + system time of ``-c pass`` and of the whole command (on a loaded
  machine less noisy than wall time, which waits for a core).

No master, no worker, no network but loopback: what is left is the CLI alone.
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"         # Debian's, as a Pi runs it
HOSTS = 20                          # in the pool `pcci run -a` gets, as over bench/delay_cli.py's lab
JOB = {"state": "succeeded", "exitCode": 0, "stdout": "", "stderr": "", "signal": None, "stdoutTruncated": False,
       "stderrTruncated": False}


def pool(count):
    return {"id": "0190aaaa-0000-7000-8000-000000000001", "cmd": "true", "status": "done", "exitCode": 0,
            "states": {"succeeded": count}, "jobs": {"n%d" % n: JOB for n in range(1, count + 1)}}


class StandIn:
    """A loopback listener that answers every request with the finished pool."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.first_bytes = []           # perf_counter() of each request's first byte
        self.closing = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def answer(count):
        body = json.dumps(pool(count)).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLocation: /pool/%s\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n \r\n%x\r\n%s\r\n0\r\n\r\n"
                % (pool(count)["id"].encode(), len(body), body))

    def _serve(self):
        answers = {1: self.answer(1), HOSTS: self.answer(HOSTS)}
        while not self.closing:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(10)
                request = connection.recv(65536)
                self.first_bytes.append(time.perf_counter())
                while b"\r\n\r\n" not in request:
                    request += connection.recv(65536)
                head, _, body_part = request.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body_part) < length:
                    body_part += connection.recv(65536)
                every = json.loads(body_part).get("workers") == "*"
                connection.sendall(answers[HOSTS if every else 1])

    def close(self):
        self.closing = True
        self.listener.close()


def cpu_of_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv, env, expect):
    """(start, end, CPU seconds) of one command, which must exit with ``expect``."""
    cpu = cpu_of_children()
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, cwd="/")
    ended = time.perf_counter()
    if result.returncode != expect:
        raise RuntimeError("%s: status %d: %s" % (argv, result.returncode, result.stderr[-500:]))
    return started, ended, cpu_of_children() - cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="the other tree (e.g. a git worktree of main)")
    parser.add_argument("--samples", type=int, default=31)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--python", default=PYTHON)
    args = parser.parse_args()
    trees = {"before": os.path.abspath(args.before), "after": REPO}
    for tree in trees.values():     # bytecode, as a .deb's install writes it
        subprocess.run([args.python, "-m", "compileall", "-q", os.path.join(tree, "pcci")], check=True,
                       stdout=subprocess.DEVNULL)
    stand_in = StandIn()
    command = [args.python, "-m", "pcci", "run", "-w", "n1", "--", "true"]
    try:
        for round_number in range(1, args.runs + 1):
            rows = {row: {variant: [] for variant in trees} for row in
                    ("python3 -c pass", "first byte", "whole command", "-a, 20 jobs printed", "a closed port",
                     "python3 -c pass, CPU", "whole command, CPU", "-a, 20 jobs, CPU")}
            for index in range(args.samples * 2):
                variant = ("before", "after")[index % 2]
                env = dict(os.environ, PYTHONPATH=trees[variant], PCCI_TOKEN="t" * 20,
                           PCCI_URL="http://127.0.0.1:%d" % stand_in.port)
                started, ended, cpu = run([args.python, "-c", "pass"], env, 0)
                rows["python3 -c pass"][variant].append(ended - started)
                rows["python3 -c pass, CPU"][variant].append(cpu)
                before_count = len(stand_in.first_bytes)
                started, ended, cpu = run(command, env, 0)
                rows["whole command, CPU"][variant].append(cpu)
                if len(stand_in.first_bytes) != before_count + 1:
                    raise RuntimeError("the stand-in saw %d requests, not one" % (len(stand_in.first_bytes)
                                                                                 - before_count))
                rows["first byte"][variant].append(stand_in.first_bytes[-1] - started)
                rows["whole command"][variant].append(ended - started)
                started, ended, cpu = run(command[:4] + ["-a"] + command[6:], env, 0)
                rows["-a, 20 jobs printed"][variant].append(ended - started)
                rows["-a, 20 jobs, CPU"][variant].append(cpu)
                started, ended, _ = run(command, dict(env, PCCI_URL="http://127.0.0.1:1"), 69)
                rows["a closed port"][variant].append(ended - started)
            print("\nround %d: ms, median of %d; before and after alternated sample by sample" % (round_number,
                                                                                              args.samples))
            print("  %-20s %9s %9s %7s" % ("", "before", "after", "ratio"))
            for row, samples in rows.items():
                before, after = (1000 * statistics.median(samples[v]) for v in ("before", "after"))
                print("  %-20s %9.1f %9.1f %7.2f" % (row, before, after, after / before))
    finally:
        stand_in.close()


if __name__ == "__main__":
    main()
