"""What a worker loads at start: a Pi runs it all day, so a module it needs only sometimes
(ctypes for a copy's openat2) is loaded when used, and none pulls in typing (1 MB of
memory for annotations nothing reads at run time)."""

import json
import subprocess
import sys

from conftest import REPO


def test_the_worker_starts_without_typing_or_ctypes():
    loaded = subprocess.run([sys.executable, "-c", "import json, sys; import pcci.worker.service; "
                             "print(json.dumps(sorted(sys.modules)))"], capture_output=True, text=True,
                            timeout=60, cwd=REPO, check=True)
    modules = set(json.loads(loaded.stdout))
    assert "pcci.worker.runner" in modules
    assert not modules & {"typing", "ctypes", "pcci.master"}, sorted(modules & {"typing", "ctypes", "pcci.master"})
