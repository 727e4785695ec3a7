"""Message types of the worker protocol and checks on their fields (pure).

docs/protocol.md lists every message. ``require`` turns a message with missing or
mistyped fields into a ``ProtocolError``: the peer is misbehaving, so its link is
closed, as for any other garbage. A ``result`` is different: it is spooled on the
worker and sent again after every reconnect, so closing the link over a bad one
would keep that worker away for good. ``check_result`` instead turns a result whose
fields are out of type or range into that job's failure, which is stored and
acknowledged like any other.
"""

import base64

from .framing import FrameError
from .spilled_text import SpilledText
from .states import FINISHED, JobState

# 2: the worker link is TLS and the handshake proofs cover the certificate (docs/protocol.md).
VERSION = 2

# Until the peer has proved it holds the cluster key it may only send handshake
# messages, which are small: a stranger cannot make us buffer a 16 MiB frame.
HANDSHAKE_MAX_FRAME_BYTES = 4096

# master -> worker
CHALLENGE = "challenge"
WELCOME = "welcome"
RUN = "run"
KILL = "kill"
ACK = "ack"
OUTPUT_FROM = "output_from"
COPY = "copy"
COPY_BEGIN = "copy_begin"       # a streamed copy (file_stream): its chunks follow copy_from
COPY_CHUNK = "copy_chunk"
FETCH_BEGIN = "fetch_begin"     # a reverse copy (file_fetch): send this file from ``offset``
FETCH_ACK = "fetch_ack"         # a fetched chunk is stored: the master's copy ends at ``offset``
# worker -> master
HELLO = "hello"
AUTH = "auth"
SYNC = "sync"
HEARTBEAT = "heartbeat"
RESULT = "result"
KILL_RESULT = "kill_result"
OUTPUT = "output"
COPY_FROM = "copy_from"         # a streamed copy's partial file ends here: send from this offset
COPY_ACK = "copy_ack"           # a chunk is written: the partial file now ends at ``offset``
FETCH_CHUNK = "fetch_chunk"     # bytes of a fetched file from ``offset`` (the last one has its sha256)
# both ways
PING = "ping"
PONG = "pong"
ERROR = "error"

FROM_WORKER = {HELLO, AUTH, SYNC, HEARTBEAT, RESULT, KILL_RESULT, OUTPUT, PING, PONG, ERROR, COPY_FROM, COPY_ACK,
               FETCH_CHUNK}
FROM_MASTER = {CHALLENGE, WELCOME, RUN, KILL, ACK, OUTPUT_FROM, COPY, PING, PONG, ERROR, COPY_BEGIN, COPY_CHUNK,
               FETCH_BEGIN, FETCH_ACK}

# -- result frame sizing: what output_cap_bytes and max_frame_bytes must agree on ---------
# Room in a result frame for everything but the output: job id, times, signal, keys.
RESULT_FRAME_OVERHEAD = 64 * 1024
# A byte of output takes at most 6 bytes in a JSON frame (a control byte is \u0001).
JSON_BYTES_PER_OUTPUT_BYTE = 6


def worst_case_result_bytes(output_cap):
    """The largest result frame a job can make: both streams full of control bytes."""
    return 2 * JSON_BYTES_PER_OUTPUT_BYTE * output_cap + RESULT_FRAME_OVERHEAD


def largest_output_cap(max_frame_bytes):
    """The largest output_cap_bytes whose worst-case result fits a frame of this size."""
    return max(0, (max_frame_bytes - RESULT_FRAME_OVERHEAD) // (2 * JSON_BYTES_PER_OUTPUT_BYTE))


# Optional abilities, named in hello and welcome; a side uses one only when both named it,
# so a worker and a master one release apart still work together (without it).
LIVE_OUTPUT = "live_output"     # output while a job runs: OUTPUT and OUTPUT_FROM
FILE_COPY = "file_copy"         # COPY: write a file the master sends
JOB_STDIN = "job_stdin"         # RUN's ``stdin``: bytes fed to the job's standard input
FILE_STREAM = "file_stream"     # COPY_BEGIN, COPY_CHUNK, COPY_FROM, COPY_ACK: a file of any size, in chunks
FILE_FETCH = "file_fetch"       # FETCH_BEGIN, FETCH_CHUNK, FETCH_ACK: a file read on the worker, to the master
# A result's output as raw bytes beside a small JSON header (framing's blob payload), so
# a large output is held once on each side; a master that names it takes either kind.
BLOB_FRAMES = "blobs"
# COPY_CHUNK's and FETCH_CHUNK's ``data`` as a raw blob (framing.RAW_BLOB), not base64 in
# JSON: a third fewer bytes and no encoding on either side. Either side takes both kinds.
RAW_CHUNKS = "raw_chunks"
# COPY_BEGIN's ``relayKey``/``relayChildren`` (pass the file on to children) and
# ``relayFrom`` (pull it from a parent, falling back to COPY_FROM): a copy relayed through
# workers (pcci.master.relay_plan). A worker that serves relays says where in its hello
# (``relay``: {port, fingerprint}); one that names only the feature can be a leaf.
RELAY = "relay"
FEATURES = (LIVE_OUTPUT, FILE_COPY, JOB_STDIN, FILE_STREAM, FILE_FETCH, BLOB_FRAMES, RAW_CHUNKS, RELAY)
STREAMS = ("stdout", "stderr")

# A job's standard input (POST /job ``stdin``, RUN's ``stdin``), in bytes: it travels in the
# run frame and is kept with the pool, so it stays well below max_frame_bytes; `pcci run`
# reads at most this of its own stdin.
MAX_STDIN_BYTES = 512 * 1024
MAX_JOB_ID_CHARS = 512
# A worker process's random name for itself, in its hello (see ``instance``).
MAX_INSTANCE_CHARS = 64
MAX_SIGNAL_CHARS = 32
# Times the API can show as ISO 8601 (year 9999 at most). A Pi without a real-time
# clock may boot in 1970, so the lower bound is the epoch, not "recently".
MAX_TIME_MS = 253402300799999
MAX_EXIT_CODE = 255
FINISHED_VALUES = frozenset(state.value for state in FINISHED)


class ProtocolError(FrameError):
    """A well-framed message that breaks the protocol."""


class HandshakeRefused(Exception):
    """The other side refused or failed the handshake (wrong key, name in use, bad name).

    ``code`` is the stable word sent in the ``error`` message, e.g. ``bad_key``."""

    def __init__(self, code, message, leader=None):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.leader = leader        # with not_leader: the active master's worker address, if known


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


def error(code, message, leader=None):
    frame = {"type": ERROR, "code": code, "message": message}
    if leader:
        frame["leader"] = leader
    return frame


COPY_FIELDS = dict(job=str, dest=str, content=str, mode=(int, _NONE), owner=(str, _NONE))
COPY_BEGIN_FIELDS = dict(job=str, dest=str, bytes=int, sha256=str, mode=(int, _NONE), owner=(str, _NONE),
                         unpack=(str, _NONE), relayKey=(str, _NONE), relayChildren=(list, _NONE),
                         relayFrom=(dict, _NONE))
# copy_begin's ``relayFrom``: where a child pulls the file, and its ticket (pcci.relay_ticket).
RELAY_FROM_FIELDS = dict(host=str, port=int, fingerprint=str, job=str, parent=str, expires=int, ticket=str)
UNPACK_KINDS = ("tar",)         # copy_begin's ``unpack``: the file is a tar of a tree, unpacked beneath dest
RUN_FIELDS = dict(job=str, cmd=str, timeout=(int, float, _NONE), env=(dict, _NONE), cwd=(str, _NONE),
                  user=(str, _NONE), stdin=(str, _NONE))
# The fields a message must carry and their JSON types, for the messages ``checked`` checks
# whole; the others (output, result, sync, heartbeat) have checks of their own below
# (check_output, check_result, job_ids, worker_stats), and docs/protocol.md lists them all.
FIELDS = {
    HELLO: dict(node=str, nonce=str),
    CHALLENGE: dict(nonce=str),
    AUTH: dict(proof=str),
    WELCOME: dict(proof=str),
    RUN: RUN_FIELDS,
    COPY: COPY_FIELDS,
    COPY_BEGIN: COPY_BEGIN_FIELDS,
    COPY_CHUNK: dict(job=str, offset=int, data=(str, bytes)),      # base64, or the bytes (RAW_CHUNKS)
    COPY_FROM: dict(job=str, offset=int),
    COPY_ACK: dict(job=str, offset=int),
    FETCH_BEGIN: dict(job=str, path=str, offset=int),
    FETCH_ACK: dict(job=str, offset=int),
    FETCH_CHUNK: dict(job=str, offset=int, bytes=int, data=(str, bytes), sha256=(str, _NONE)),
    KILL: dict(job=str),
    KILL_RESULT: dict(job=str, outcome=str),
    ACK: dict(job=str),
    OUTPUT_FROM: dict(job=str, offsets=dict),
}


def checked(message, expected_type):
    """The message, if it is of this type and carries its fields (``FIELDS``); else ProtocolError."""
    return require(message, expected_type, **FIELDS.get(expected_type, {}))


def chunk_data(message):
    """A COPY_CHUNK's or FETCH_CHUNK's bytes: its raw blob as it came, or its base64 decoded."""
    data = message["data"]
    if isinstance(data, bytes):
        return data
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        raise ProtocolError("%s %s: data is not base64" % (message["type"], message["job"][:100]))


def result_message(job, state, exit_code, signal, start_time, end_time, stdout, stderr,
                   stdout_truncated, stderr_truncated):
    """A ``result`` message: the one definition of its fields, for the runner and the swarm."""
    return {"type": RESULT, "job": job, "state": JobState(state).value, "exitCode": exit_code,
            "signal": signal, "startTime": start_time, "endTime": end_time, "stdout": stdout,
            "stderr": stderr, "stdoutTruncated": stdout_truncated, "stderrTruncated": stderr_truncated}


def check_result(message):
    """(result, problem): the result with every field checked, or, when a field is out of
    type or range, a failed result for the same job and the problem found. A result
    without a usable job id is garbage (ProtocolError): there is no job to fail."""
    job = message.get("job")
    if not isinstance(job, str) or not 0 < len(job) <= MAX_JOB_ID_CHARS or not storable(job):
        raise ProtocolError("result without a usable job id")
    problem = _result_problem(message)
    if problem is None:
        return message, None
    stderr = "pcci: the worker sent an invalid result for this job (%s)\n" % problem
    failed = result_message(job, JobState.FAILED, None, None, None, None, "", stderr, False, False)
    return failed, problem


def _result_problem(message):
    # On every result: plain type() checks (type(True) is bool, not int), in one pass.
    get = message.get
    if get("state") not in FINISHED_VALUES:
        return "state %r is not one of %s" % (_short(get("state")), ", ".join(sorted(FINISHED_VALUES)))
    exit_code = get("exitCode")
    if exit_code is not None and (type(exit_code) is not int or not 0 <= exit_code <= MAX_EXIT_CODE):
        return "exitCode %r is not a whole number from 0 to %d" % (_short(exit_code), MAX_EXIT_CODE)
    signal = get("signal")
    if signal is not None and (type(signal) is not str or len(signal) > MAX_SIGNAL_CHARS or not storable(signal)):
        return "signal %r is not a signal name" % (_short(signal),)
    for name in ("startTime", "endTime"):
        value = get(name)
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_TIME_MS):
            return "%s %r is not a time in milliseconds since 1970" % (name, _short(value))
    for name in ("stdout", "stderr"):
        value = get(name)
        if type(value) is SpilledText:      # the master's spill wrote it as UTF-8 (result_spill)
            continue
        if type(value) is not str or not storable(value):
            return "%s is not UTF-8 text" % name
    for name in ("stdoutTruncated", "stderrTruncated"):
        if type(get(name)) is not bool:
            return "%s is not true or false" % name
    return None


def features(message):
    """The optional abilities a hello or welcome names that this side has too: one shared
    set for each combination (a master keeps one per connected worker: 0.7 KB each)."""
    named = message.get("features")
    found = frozenset(name for name in named if name in FEATURES) if isinstance(named, list) else frozenset()
    return _FEATURE_SETS.setdefault(found, found)      # at most 2**len(FEATURES) keys


_FEATURE_SETS = {}


def relay_endpoint(hello):
    """The relay listener a hello names ({port, fingerprint}), or None: it serves no relays."""
    relay = hello.get("relay")
    if not isinstance(relay, dict):
        return None
    port, fingerprint = relay.get("port"), relay.get("fingerprint")
    if type(port) is not int or not 0 < port < 65536 or not isinstance(fingerprint, str) or len(fingerprint) > 100:
        return None
    return {"port": port, "fingerprint": fingerprint}


def relay_from(message):
    """A copy_begin's ``relayFrom``, its fields checked, or None (ProtocolError if malformed)."""
    relay = message.get("relayFrom")
    if relay is None:
        return None
    return require(dict(relay, type=COPY_BEGIN), COPY_BEGIN, **RELAY_FROM_FIELDS)


def user_names(hello):
    """The users a worker's hello says its jobs may run as; [] if it names none (an older worker)."""
    users = hello.get("users")
    if not isinstance(users, list):
        return []
    return [user for user in users[:256] if isinstance(user, str) and 0 < len(user) <= 64 and storable(user)]


def instance(hello):
    """The worker process's instance id from its hello, or None (an older worker, or garbage).

    A worker makes a new random one each time its process starts, so a master that sees
    the same id again knows the process that synced last is still the one: every job it
    was sent and still holds, it reports (running, queued, or its result spooled)."""
    value = hello.get("instance")
    if isinstance(value, str) and 0 < len(value) <= MAX_INSTANCE_CHARS and value.isascii() and value.isprintable():
        return value
    return None


def output_message(job, stream, offset, length, seq, text):
    """A piece of a running job's output: ``length`` bytes of ``stream`` from byte
    ``offset``, decoded as ``text``; ``seq`` counts the job's pieces."""
    return {"type": OUTPUT, "job": job, "stream": stream, "offset": offset, "length": length, "seq": seq,
            "data": text}


def check_output(message):
    """An output message with usable fields, else ProtocolError: live output is best effort,
    so a bad one is not kept, but it says the peer is broken."""
    require(message, OUTPUT, job=str, stream=str, offset=int, length=int, seq=int, data=str)
    if message["stream"] not in STREAMS or message["offset"] < 0 or message["length"] < 0:
        raise ProtocolError("output message with stream %r, offset %r, length %r"
                            % (_short(message["stream"]), message["offset"], message["length"]))
    if not storable(message["data"]) or not storable(message["job"]):
        raise ProtocolError("output message whose text is not UTF-8")
    return message


# A job id is POOL_ID/NODE: a 36-character pool id and a node name of at most 255.
MAX_JOB_ID_CHARS = 36 + 1 + 255


def job_ids(message, field):
    """A list of job ids from a heartbeat or a sync, or None if it is not one (an id longer
    than any job's is not one: the list is shown in GET /workers and the metrics)."""
    ids = message.get(field)
    if isinstance(ids, list) and all(isinstance(job, str) and len(job) <= MAX_JOB_ID_CHARS and storable(job)
                                     for job in ids):
        return ids
    return None


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def storable(text):
    """Whether a string can be written as UTF-8: JSON's \\ud800 escapes decode to lone
    surrogates, which no UTF-8 file or database can hold."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
