"""The README's first command: set up and start a master and a local worker, with live curl calls."""

import os
import signal
import socket
import subprocess

import pytest

from conftest import REPO, free_port, wait_until
from pcci.worker.job_process import group_alive

pytestmark = [pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/apt-get"),
                                 reason="the quickstart installs Debian packages: needs root on Debian"),
              pytest.mark.process, pytest.mark.root]


def start_quickstart(tmp_path, api_port=None):
    env = dict(os.environ, PCCI_API_PORT=str(api_port or free_port()), PCCI_WORKER_PORT=str(free_port()),
               PCCI_LOCAL_DIR=str(tmp_path / "local"))
    output = tmp_path / "out"
    with open(output, "wb") as sink:
        process = subprocess.Popen([os.path.join(REPO, "scripts", "quickstart")], stdout=sink,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return process, output


def kill_group(process):
    """The whole group, even once the script has exited: nothing it started may outlive the test."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(5)


def test_quickstart_starts_a_working_master_and_worker_and_stops_cleanly(tmp_path):
    process, output = start_quickstart(tmp_path)
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
        kill_group(process)


def test_a_busy_port_is_said_at_once_and_nothing_is_left_running(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        process, output = start_quickstart(tmp_path, api_port=holder.getsockname()[1])
        try:
            assert process.wait(60) == 1
            text = output.read_text()
            assert "127.0.0.1:%d is already in use" % holder.getsockname()[1] in text, text
            assert "did not come online" not in text
            assert not group_alive(process.pid)
        finally:
            kill_group(process)


def test_a_term_sent_to_the_script_alone_stops_the_master_and_the_worker(tmp_path):
    process, output = start_quickstart(tmp_path)
    try:
        wait_until(lambda: "Press Ctrl-C" in output.read_text() or process.poll() is not None,
                   timeout=60, what="quickstart ready")
        assert group_alive(process.pid)
        process.terminate()                 # the script only, as `kill PID` does
        assert process.wait(20) == 143
        wait_until(lambda: not group_alive(process.pid), timeout=15, what="the master and worker stopped too")
    finally:
        kill_group(process)
