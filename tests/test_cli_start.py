"""What the pcci command does at its start and its exit, where its own milliseconds go
(docs/performance.md, "The pcci command's start and exit"): `pcci run` loads no module
only another command needs, and leaves without the interpreter's teardown unless
something is owed at exit (pcci.cli.quick_exit)."""

import json
import os
import subprocess
import sys

from conftest import REPO


def python(code, stdout=subprocess.PIPE):
    """Python running ``code``, its stdout buffered as a user's is (not PYTHONUNBUFFERED)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", code], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=60, cwd=REPO, env=dict(env, PYTHONPATH=REPO))


def modules_after(code):
    return set(json.loads(python(code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))")
                          .stdout.splitlines()[-1]))


def test_pcci_run_loads_neither_argparse_nor_the_schedules_nor_urllib_nor_a_service():
    loaded = modules_after("from pcci.cli.main import main\n"
                           "assert main(['run', '--url', 'http://127.0.0.1:1', '-w', 'n1', '--', 'true']) == 69")
    assert {"pcci.cli.main", "pcci.client.transport"} <= loaded    # it is the command's list
    unwanted = {"argparse", "gettext", "pcci.cli.schedules", "urllib.parse", "ipaddress", "pcci.master",
                "pcci.worker", "gevent", "http.client", "typing", "shutil", "yaml"} - modules_after("pass")
    assert not loaded & unwanted, sorted(loaded & unwanted)


def test_output_is_flushed_whole_and_the_status_kept():
    done = python("import sys\nfrom pcci.cli.quick_exit import exit_now\n"
                  "sys.stdout.write('x' * 200000)\nsys.stderr.write('to stderr')\nexit_now(3)")
    assert (done.returncode, len(done.stdout), done.stderr) == (3, 200000, "to stderr")


def test_the_interpreters_teardown_is_skipped():
    code = ("class Noisy:\n    def __del__(self):\n        print('torn down', flush=True)\n"
            "kept = Noisy()\nfrom pcci.cli.quick_exit import exit_now\nexit_now(0)")
    assert python(code).stdout == ""
    assert python(code.replace("exit_now(0)", "import sys; sys.exit(0)")).stdout == "torn down\n"   # the check works


def test_an_atexit_handler_and_a_running_thread_are_still_waited_for():
    done = python("import atexit\nfrom pcci.cli.quick_exit import exit_now\n"
                  "atexit.register(print, 'atexit ran')\nexit_now(4)")
    assert (done.returncode, done.stdout) == (4, "atexit ran\n")
    done = python("import threading, time\nfrom pcci.cli.quick_exit import exit_now\n"
                  "threading.Thread(target=lambda: (time.sleep(0.3), print('thread ended'))).start()\nexit_now(5)")
    assert (done.returncode, done.stdout) == (5, "thread ended\n")


def test_a_closed_stdout_ends_as_pythons_own_exit_ends_it():
    def ended(leave):
        read_end, write_end = os.pipe()
        os.close(read_end)          # the reader is gone before the first byte: the flush fails
        try:
            return python("import sys\nfrom pcci.cli.quick_exit import exit_now\nsys.stdout.write('lost')\n"
                          + leave, stdout=write_end)
        finally:
            os.close(write_end)
    quick, plain = ended("exit_now(0)"), ended("sys.exit(0)")
    assert quick.returncode == plain.returncode == 120
    assert quick.stderr == plain.stderr and "BrokenPipeError" in quick.stderr
