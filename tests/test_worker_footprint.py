"""What a worker loads at start: a Pi runs it all day, so a module it needs only sometimes
(ctypes for a copy's openat2) is loaded when used, and none pulls in typing (1 MB of
memory for annotations nothing reads at run time), nor psutil (0.7 MB for a few numbers
/proc gives: pcci/worker/stats.py)."""

import json
import subprocess
import sys

from conftest import REPO


def modules_after(statement):
    loaded = subprocess.run([sys.executable, "-c", "import json, sys; %s; print(json.dumps(sorted(sys.modules)))"
                             % statement], capture_output=True, text=True, timeout=60, cwd=REPO, check=True)
    return set(json.loads(loaded.stdout))


def test_the_worker_starts_without_typing_ctypes_or_psutil():
    # What the libraries load themselves (a newer gevent imports typing) is not the worker's doing.
    libraries = modules_after("import gevent, gevent.os, gevent.socket, ssl, yaml")
    added = modules_after("import pcci.worker.service") - libraries
    assert "pcci.worker.runner" in added
    unwanted = {"typing", "ctypes", "psutil", "pcci.master"}
    assert not added & unwanted, sorted(added & unwanted)
