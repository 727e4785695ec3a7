import pytest

from pcci import protocol
from pcci.protocol import ProtocolError, require


def result(**changes):
    message = {"type": "result", "job": "p/n", "state": "succeeded", "exitCode": 0, "signal": None,
               "startTime": 1, "endTime": 2, "stdout": "", "stderr": ""}
    message.update(changes)
    return message


def test_a_well_formed_result_passes():
    assert require(result(), protocol.RESULT, **protocol.RESULT_FIELDS)["job"] == "p/n"


@pytest.mark.parametrize("changes", [{"job": 5}, {"exitCode": "0"}, {"exitCode": True}, {"stdout": None},
                                     {"type": "heartbeat"}])
def test_mistyped_fields_break_the_protocol(changes):
    with pytest.raises(ProtocolError):
        require(result(**changes), protocol.RESULT, **protocol.RESULT_FIELDS)


def test_unknown_types_are_refused_by_direction():
    assert protocol.check_known({"type": "run"}, protocol.FROM_MASTER)
    with pytest.raises(ProtocolError, match="unknown message type"):
        protocol.check_known({"type": "run"}, protocol.FROM_WORKER)
