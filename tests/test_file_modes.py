"""State files are private whatever the umask: files 0600, directories 0700.

Each case runs in a subprocess with its own umask (the umask is per process), creating
what the master and the worker create: the state directories, the SQLite store with its
WAL, a spooled result, the worker link's TLS key.
"""

import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO

CREATE = r"""
import json, os, stat, sys
os.umask(int(sys.argv[2], 8))
base = sys.argv[1]
from pcci.durable_files import make_directories
from pcci.master.store import Store
from pcci.worker.spool import Spool
from pcci import tls
from pcci.model import WorkerRecord

make_directories(os.path.join(base, "master", "state"))
store = Store(os.path.join(base, "master", "state", "pcci.sqlite3"))
store.open()
store.save([], [], [WorkerRecord("pi1", "10.0.0.1", 1, 2, None, {})])
spool = Spool(os.path.join(base, "worker", "results"))
spool.save("p/pi1", b'{"type": "result"}')
tls.ensure_certificate(os.path.join(base, "tls", "link.crt"), os.path.join(base, "tls", "link.key"), "test")
modes = {}
for root, directories, files in os.walk(base):
    for name in directories + files:
        path = os.path.join(root, name)
        modes[os.path.relpath(path, base)] = stat.S_IMODE(os.stat(path).st_mode)
store.close()
print(json.dumps(modes))
"""


@pytest.mark.parametrize("umask", ["022", "000"])
def test_state_files_and_directories_are_private_whatever_the_umask(tmp_path, umask):
    done = subprocess.run([sys.executable, "-c", CREATE, str(tmp_path), umask], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO), timeout=60, check=True)
    modes = json.loads(done.stdout)
    assert "master/state/pcci.sqlite3-wal" in modes             # it was open: its log existed
    public = {"tls/link.crt": 0o644}                             # a certificate is public
    wrong = {path: oct(mode) for path, mode in modes.items()
             if mode != public.get(path, 0o700 if os.path.isdir(tmp_path / path) else 0o600)}
    assert wrong == {}


def test_an_existing_store_others_could_read_is_made_private(tmp_path):
    path = tmp_path / "pcci.sqlite3"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    done = subprocess.run([sys.executable, "-c", "from pcci.master.store import Store; s = Store(%r); s.open(); "
                           "s.close()" % str(path)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO), timeout=60, check=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "made it private" in done.stderr
