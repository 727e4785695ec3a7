"""Log lines: one printable line per event, and under systemd each line carries its
syslog priority so journald files errors as errors."""

import logging
import os
import subprocess
import sys

import pytest

from conftest import REPO
from pcci import logs


def record(level, message, exc_info=None):
    return logging.LogRecord("pcci.test", level, __file__, 1, message, (), exc_info)


def test_a_forged_line_stays_on_its_own_line():
    formatter = logs.OneLineFormatter("%(levelname)s %(name)s: %(message)s")
    assert formatter.format(record(logging.INFO, "GET /x\nERROR fake: \x1b[2J")) == \
        "INFO pcci.test: GET /x\\nERROR fake: \\x1b[2J"


def test_to_the_journal_every_line_starts_with_its_priority():
    formatter = logs.OneLineFormatter("%(levelname)s %(name)s: %(message)s", to_journal=True)
    assert formatter.format(record(logging.ERROR, "store failing")) == "<3>ERROR pcci.test: store failing"
    assert formatter.format(record(logging.WARNING, "w")).startswith("<4>WARNING")
    assert formatter.format(record(logging.INFO, "i")).startswith("<6>INFO")
    assert formatter.format(record(logging.DEBUG, "d")).startswith("<7>DEBUG")
    assert formatter.format(record(logging.CRITICAL, "c")).startswith("<2>CRITICAL")
    try:
        raise ValueError("boom")
    except ValueError:
        lines = formatter.format(record(logging.ERROR, "crashed", sys.exc_info())).split("\n")
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines)     # the traceback too


def test_only_the_journals_own_stream_gets_priorities(tmp_path):
    with open(tmp_path / "log", "w") as handle:
        status = os.fstat(handle.fileno())
        named = "%d:%d" % (status.st_dev, status.st_ino)
        assert logs.stderr_is_journal({"JOURNAL_STREAM": named}, handle)
        assert not logs.stderr_is_journal({}, handle)
        assert not logs.stderr_is_journal({"JOURNAL_STREAM": "1:2"}, handle)
        assert not logs.stderr_is_journal({"JOURNAL_STREAM": "junk"}, handle)


@pytest.mark.process
def test_a_service_started_by_the_journal_prefixes_and_one_writing_elsewhere_does_not(tmp_path):
    """A real worker process: JOURNAL_STREAM naming its stderr, then naming something else
    (as a child of a service whose stderr was redirected would inherit it)."""
    config = tmp_path / "worker.yaml"
    config.write_text("state_dir: %s\n" % (tmp_path / "state"))       # no master: a warning, then exit
    os.chmod(config, 0o600)
    for named, prefixed in ((True, True), (False, False)):
        log_path = tmp_path / ("log-%s" % named)
        with open(log_path, "w") as handle:
            status = os.fstat(handle.fileno())
            env = dict(os.environ, PYTHONPATH=REPO,
                       JOURNAL_STREAM="%d:%d" % (status.st_dev, status.st_ino) if named else "1:1")
            subprocess.run([sys.executable, "-m", "pcci", "worker", "--config", str(config)], stdout=handle,
                           stderr=handle, env=env, timeout=60)
        text = log_path.read_text()
        assert "not configured yet" in text
        line = [line for line in text.splitlines() if "not configured yet" in line][0]
        assert line.startswith("<4>WARNING") == prefixed, line
