import pytest

from pcci import protocol
from pcci.protocol import ProtocolError, check_result, require


def result(**changes):
    message = protocol.result_message("p/n", "succeeded", 0, None, 1, 2, "", "", False, False)
    message.update(changes)
    return message


def test_a_well_formed_result_passes_unchanged():
    assert check_result(result()) == (result(), None)


@pytest.mark.parametrize("changes,named", [
    ({"exitCode": 2 ** 64}, "exitCode"),            # OverflowError in SQLite before the fix
    ({"exitCode": -1}, "exitCode"),
    ({"exitCode": "0"}, "exitCode"),
    ({"exitCode": True}, "exitCode"),
    ({"startTime": 10 ** 15}, "startTime"),         # made GET /pool answer 500 before the fix
    ({"endTime": -5}, "endTime"),
    ({"endTime": 1.5}, "endTime"),
    ({"state": "running"}, "state"),
    ({"state": None}, "state"),
    ({"stdout": None}, "stdout"),
    ({"stderr": "x\ud800"}, "stderr"),              # a lone surrogate no database stores
    ({"signal": "S" * 100}, "signal"),
    ({"stdoutTruncated": "yes"}, "stdoutTruncated"),
    ({"stderrTruncated": None}, "stderrTruncated"),
])
def test_a_result_out_of_type_or_range_becomes_that_jobs_failure(changes, named):
    checked, problem = check_result(result(**changes))
    assert named in problem
    assert checked["job"] == "p/n" and checked["state"] == "failed" and checked["exitCode"] is None
    assert "invalid result" in checked["stderr"] and named in checked["stderr"]
    assert check_result(checked) == (checked, None)


@pytest.mark.parametrize("job", [5, None, "", "x" * 600, "p/\ud800"])
def test_a_result_without_a_usable_job_id_breaks_the_protocol(job):
    with pytest.raises(ProtocolError):
        check_result(result(job=job))


def test_require_checks_type_and_field_types():
    assert require({"type": "ack", "job": "p/n"}, protocol.ACK, job=str)
    for message in ({"type": "ack", "job": 5}, {"type": "ping", "job": "p/n"}, {"type": "ack"}):
        with pytest.raises(ProtocolError):
            require(message, protocol.ACK, job=str)


def test_unknown_types_are_refused_by_direction():
    assert protocol.check_known({"type": "run"}, protocol.FROM_MASTER)
    with pytest.raises(ProtocolError, match="unknown message type"):
        protocol.check_known({"type": "run"}, protocol.FROM_WORKER)


def test_job_id_lists_are_checked():
    assert protocol.job_ids({"running": ["p/a"]}, "running") == ["p/a"]
    longest = "01a229b2-42fb-71e9-8000-000000000000/" + "n" * 255
    assert protocol.job_ids({"running": [longest]}, "running") == [longest]
    for ids in (None, "p/a", [5], ["p/\ud800"], [longest + "x"]):
        assert protocol.job_ids({"running": ids}, "running") is None
