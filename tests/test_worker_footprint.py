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


def test_a_relaying_worker_loads_nothing_of_the_master():
    # The relay listener's caps on strangers are the worker port's (pcci.connection_limits):
    # taken from pcci.master, they brought the master's package into every relaying worker.
    added = modules_after("from pcci.worker.relay_server import RelayServer; "
                          "RelayServer(('127.0.0.1', 0), None, 'fingerprint', None, 'pi1')")
    assert "pcci.connection_limits" in added
    assert not {name for name in added if name.split(".")[:2] == ["pcci", "master"]}


# Kept by an idle worker for nothing: PyYAML and datetime once the config is read, the
# whole CLI's parser, what only a copy or a fetch uses (tarfile, shutil and with them bz2
# and lzma), urllib.parse and ipaddress (a master's store URL and networks), and pprint
# with dataclasses and inspect (gevent's default repr of a failed greenlet's context).
IDLE_UNWANTED = {"yaml", "yaml._yaml", "datetime", "argparse", "gettext", "pcci.cli.main", "tarfile", "shutil",
                 "bz2", "lzma", "urllib.parse", "ipaddress", "pprint", "dataclasses", "inspect", "typing",
                 "ctypes", "psutil"}


def test_a_running_worker_that_ran_a_job_holds_no_module_it_needs_only_sometimes(cluster, tmp_path):
    """Seen in a real worker process: a sitecustomize writes its sys.modules as it exits."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import atexit, os, sys\n"
        "def _write():\n"
        "    with open(os.environ['PCCI_TEST_MODULES'], 'w') as handle:\n"
        "        handle.write('\\n'.join(sorted(sys.modules)))\n"
        "atexit.register(_write)\n")
    listing = tmp_path / "modules.txt"
    cluster.start_master()
    worker = cluster.start_worker("w1", wait=False)
    worker.stop()
    worker.python_path = [str(site)]
    worker.env = {"PCCI_TEST_MODULES": str(listing)}
    worker.start()
    cluster.wait_online("w1")
    assert cluster.run("echo ran", ["w1"])["jobs"]["w1"]["stdout"] == "ran\n"
    worker.stop()
    loaded = set(listing.read_text().split())
    assert {"pcci.worker.service", "pcci.worker.runner", "gevent", "ssl"} <= loaded   # it is the worker's list
    # What gevent and ssl load themselves (a newer gevent imports typing) is not the worker's doing.
    unwanted = IDLE_UNWANTED - modules_after("import gevent, gevent.os, gevent.socket, gevent.event, gevent.ssl, ssl")
    assert not loaded & unwanted, sorted(loaded & unwanted)
