"""Message types of the worker protocol and checks on their fields (pure).

docs/protocol.md lists every message. ``require`` turns a message with missing or
mistyped fields into a ``ProtocolError``: the peer is misbehaving, so its
connection is closed, as for any other garbage.
"""

from .framing import FrameError

VERSION = 1

# Until the peer has proved it holds the cluster key it may only send handshake
# messages, which are small: a stranger cannot make us buffer a 16 MiB frame.
HANDSHAKE_MAX_FRAME_BYTES = 4096

# master -> worker
CHALLENGE = "challenge"
WELCOME = "welcome"
RUN = "run"
KILL = "kill"
ACK = "ack"
# worker -> master
HELLO = "hello"
AUTH = "auth"
SYNC = "sync"
HEARTBEAT = "heartbeat"
RESULT = "result"
KILL_RESULT = "kill_result"
# both ways
PING = "ping"
PONG = "pong"
ERROR = "error"

FROM_WORKER = {HELLO, AUTH, SYNC, HEARTBEAT, RESULT, KILL_RESULT, PING, PONG, ERROR}
FROM_MASTER = {CHALLENGE, WELCOME, RUN, KILL, ACK, PING, PONG, ERROR}


class ProtocolError(FrameError):
    """A well-framed message that breaks the protocol."""


_NONE = type(None)


def require(message, expected_type, **fields):
    """Check the message type and field types; return the message."""
    if message.get("type") != expected_type:
        raise ProtocolError("expected a %r message, got %r" % (expected_type, message.get("type")))
    for name, types in fields.items():
        value = message.get(name)
        json_true_as_number = isinstance(value, bool) and bool not in _as_tuple(types)
        if not isinstance(value, types) or json_true_as_number:
            raise ProtocolError("%r message: field %r is missing or has the wrong type" % (expected_type, name))
    return message


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


def check_known(message, known):
    if message["type"] not in known:
        raise ProtocolError("unknown message type %r" % message["type"])
    return message


def error(code, message):
    return {"type": ERROR, "code": code, "message": message}


RESULT_FIELDS = dict(job=str, state=str, exitCode=(int, _NONE), signal=(str, _NONE),
                     startTime=(int, _NONE), endTime=(int, _NONE), stdout=str, stderr=str)
RUN_FIELDS = dict(job=str, cmd=str, timeout=(int, float, _NONE), env=(dict, _NONE), cwd=(str, _NONE))
