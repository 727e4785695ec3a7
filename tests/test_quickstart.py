"""The README's first command: set up and start a master and a local worker, with live curl calls."""

import os
import signal
import subprocess

import pytest

from conftest import REPO, free_port, wait_until
from pcci.worker.job_process import group_alive

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/apt-get"),
                                reason="the quickstart installs Debian packages: needs root on Debian")


def test_quickstart_starts_a_working_master_and_worker_and_stops_cleanly(tmp_path):
    env = dict(os.environ, PCCI_API_PORT=str(free_port()), PCCI_WORKER_PORT=str(free_port()),
               PCCI_LOCAL_DIR=str(tmp_path / "local"))
    output = tmp_path / "out"
    with open(output, "wb") as sink:
        process = subprocess.Popen([os.path.join(REPO, "scripts", "quickstart")], stdout=sink,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_until(lambda: "Press Ctrl-C" in output.read_text() or process.poll() is not None,
                   timeout=60, what="quickstart ready")
        text = output.read_text()
        assert "PCCI is running" in text and "API token: " in text
        assert '"status": "done", "exitCode": 0' in text            # the uname job ran
        assert '"online": true' in text                              # GET /workers
        assert '"already_ended"' in text                             # PUT /kill on a finished pool
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(20) is not None
        wait_until(lambda: not group_alive(process.pid), timeout=15, what="the master and worker stopped too")
    finally:
        # The whole group, even once the script has exited: nothing it started may outlive the test.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(5)
