"""Checks on REST request bodies and query strings (pure): plain values in, plain values out.

Each problem raises the named error from ``pcci.errors`` that says which field is
wrong and what was expected. Every string that is accepted can be stored and passed
to exec(): no NUL bytes, no lone surrogates.
"""

import base64
import hashlib
import re

from ..errors import (BadTarget, DuplicateWorker, EmptyBody, EmptyCmd, MalformedJson, NulByte, OutOfRange,
                      PayloadTooLarge, PoolTooLarge, UnencodableText, UnknownField, WrongType)
from ..config import USER_NAME
from ..framing import loads
from ..protocol import MAX_STDIN_BYTES, storable
from ..model import CopySpec
from ..states import OfflinePolicy, PoolStatus, values
from ..target_size import TargetError, TargetTooLarge, check_budget
from ..targets import Term, inverted, names_term, scan
from .notify_allow import AllowList
from .notify_rules import notify_list
from .pool_request import PoolRequest

MAX_WAIT_SECONDS = 3600.0
MAX_PAGE = 1000
MAX_TIMEOUT_SECONDS = 366 * 86400.0
JOB_FIELDS = ("cmd", "workers", "exclude", "timeout", "env", "cwd", "user", "batch", "maxFailures", "offline",
              "queueTimeout", "stdin", "notify")
KILL_FIELDS = ("workers",)


def parse_json_body(body):
    if not body or not body.strip():
        raise EmptyBody("the request body is empty; send a JSON object")
    try:
        data = loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedJson("the request body is not valid JSON: %s" % exc)
    if not isinstance(data, dict):
        raise WrongType("the request body must be a JSON object")
    return data


def _reject_unknown(data, known):
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UnknownField("unknown field(s) %s; expected some of %s" % (", ".join(unknown), ", ".join(known)))


def _worker_list(value, field="workers", limit=None):
    """None, "*" or [] mean every online worker; otherwise a list of distinct names, at
    most ``limit`` of them (counted before any other work)."""
    if value is None or value == "*":
        return []
    if limit is not None and isinstance(value, list) and len(value) > limit:
        refusal = PoolTooLarge if field == "workers" else BadTarget
        raise refusal("'%s' lists %d workers; at most %d (max_pool_jobs)" % (field, len(value), limit))
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise WrongType("'%s' must be \"*\" or a list of worker names" % field)
    _check_texts(field, value)
    if value == ["*"]:
        return []
    if len(set(value)) != len(value):
        raise DuplicateWorker("'%s' lists a worker twice" % field)
    return list(value)


def target(workers, exclude, limit):
    """(terms, listed) for a pool's ``workers`` and ``exclude``: a list names workers as
    given (``listed``), as it always did; a string is a target expression (pcci.targets);
    none, or "*", is every online worker. Both together may name at most ``limit``
    workers to include and ``limit`` to exclude, counted before anything is expanded
    (groups are counted when the master resolves them)."""
    listed = isinstance(workers, list) and workers != ["*"]
    if listed:
        terms = [names_term(_worker_list(workers, limit=limit))]
    elif workers is None or workers == "*" or workers == ["*"]:
        terms = [Term(True, "all", None, 0, "*")]
    elif isinstance(workers, str):
        terms = _expression("workers", workers)
    else:
        raise WrongType("'workers' must be a list of worker names or a target expression (a string)")
    if exclude is not None:
        if isinstance(exclude, list):
            left_out = [names_term(_worker_list(exclude, "exclude", limit), "exclude", include=False)]
        elif isinstance(exclude, str):
            left_out = inverted(_expression("exclude", exclude))
        else:
            raise WrongType("'exclude' must be a list of worker names or a target expression (a string)")
        terms += left_out
    _budget("'workers'" if exclude is None else "'workers' and 'exclude'", terms, limit)
    return terms, listed


def _expression(field, text):
    """The measured terms of an expression (nothing expanded; ``_budget`` counts them)."""
    _check_texts(field, [text])
    try:
        return scan(text)
    except TargetError as exc:
        raise BadTarget("'%s': %s" % (field, exc))


def _budget(fields, terms, limit):
    """At most ``limit`` names included and ``limit`` excluded, counted arithmetically."""
    try:
        check_budget(sum(term.adds for term in terms), sum(term.removes for term in terms), limit, fields)
    except TargetTooLarge as exc:
        raise PoolTooLarge(str(exc))
    except TargetError as exc:
        raise BadTarget(str(exc))


def job_stdin(value):
    """POST /job's ``stdin``: text (sent as UTF-8) or ``{"base64": ...}`` for any bytes; as
    the base64 text the run frame carries, or None. Its size is computed before decoding."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) > MAX_STDIN_BYTES or len(value.encode("utf-8", "surrogatepass")) > MAX_STDIN_BYTES:
            raise PayloadTooLarge("'stdin' is over %d bytes" % MAX_STDIN_BYTES)
        _check_texts("stdin", [value.replace("\0", "")])
        return base64.b64encode(value.encode("utf-8")).decode("ascii")
    if not (isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str)):
        raise WrongType("'stdin' must be text, or {\"base64\": \"...\"} for any bytes")
    encoded = value["base64"]
    if len(encoded) > 4 * -(-MAX_STDIN_BYTES // 3):
        raise PayloadTooLarge("'stdin' is over %d bytes" % MAX_STDIN_BYTES)
    try:
        size = len(base64.b64decode(encoded, validate=True))
    except ValueError:
        raise WrongType("'stdin.base64' is not base64")
    if size > MAX_STDIN_BYTES:
        raise PayloadTooLarge("'stdin' is over %d bytes" % MAX_STDIN_BYTES)
    return encoded


def job_request(body: bytes, max_pool_jobs: int, notify_allow: AllowList = None) -> PoolRequest:
    data = parse_json_body(body)
    _reject_unknown(data, JOB_FIELDS)
    cmd = data.get("cmd")
    if not isinstance(cmd, str):
        raise WrongType("'cmd' must be a string holding a shell command")
    if not cmd.strip():
        raise EmptyCmd("'cmd' is empty; give a shell command")
    timeout = data.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise WrongType("'timeout' must be a number of seconds")
        if not 0 < timeout <= MAX_TIMEOUT_SECONDS:
            raise OutOfRange("'timeout' must be more than 0 and at most %d seconds, got %r"
                             % (MAX_TIMEOUT_SECONDS, timeout))
    env = data.get("env")
    if env is not None and (not isinstance(env, dict) or not all(
            isinstance(k, str) and k and "=" not in k and isinstance(v, str) for k, v in env.items())):
        raise WrongType("'env' must be an object of string names (without '=') to string values")
    cwd = data.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd):
        raise WrongType("'cwd' must be a directory path")
    _check_texts("cmd", [cmd])
    _check_texts("cwd", [cwd] if cwd else [])
    _check_texts("env", [text for pair in (env or {}).items() for text in pair])
    user = data.get("user")
    if user is not None and not (isinstance(user, str) and USER_NAME.fullmatch(user)):
        raise WrongType("'user' must be a user name (the worker's allowed_users say which), got %r" % (user,))
    stdin = job_stdin(data.get("stdin"))
    terms, listed = target(data.get("workers"), data.get("exclude"), max_pool_jobs)
    return PoolRequest(cmd=cmd, terms=terms, listed=listed, timeout=timeout, env=env, cwd=cwd, user=user,
                       stdin=stdin, target={"workers": data.get("workers", "*"), "exclude": data.get("exclude")},
                       notify=notify_list(data.get("notify"), notify_allow or AllowList()), **rollout(data))


COPY_FIELDS = ("workers", "exclude", "dest", "content", "sha256", "unpack", "mode", "owner", "relay", "batch",
               "maxFailures", "offline", "queueTimeout", "notify")
SHA256 = re.compile(r"[0-9a-f]{64}")
OWNER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}(:([a-z_][a-z0-9_.-]{0,31})?)?|:[a-z_][a-z0-9_.-]{0,31}")


def copy_request(body: bytes, max_pool_jobs: int, max_file_bytes: int,
                 notify_allow: AllowList = None) -> PoolRequest:
    """POST /copy: a file (``content``, base64; or ``sha256``, of one uploaded with PUT /files)
    to write at ``dest`` on the targeted workers. An uploaded file's size is not known here:
    the CopySpec has ``blob`` set and ``size`` -1 until the caller fills it in."""
    data = parse_json_body(body)
    _reject_unknown(data, COPY_FIELDS)
    dest = _absolute_path(data, "dest", "to write")
    content, blob = data.get("content"), data.get("sha256")
    if blob is not None and (content is not None or not isinstance(blob, str) or not SHA256.fullmatch(blob)):
        raise WrongType("'sha256' must be the sha256 (64 lowercase hex digits) of a file uploaded with PUT /files, "
                        "without 'content'")
    if not isinstance(content, str) and blob is None:
        raise WrongType("'content' must be the file's bytes in base64 (or give 'sha256' of an uploaded file)")
    unpack = data.get("unpack")
    if unpack is not None and (unpack != "tar" or blob is None):
        raise WrongType("'unpack' may only be \"tar\", with 'sha256' (a tree's tar stream uploaded with PUT /files)")
    mode, owner = _copy_mode(data.get("mode")), data.get("owner")
    if owner is not None and not (isinstance(owner, str) and OWNER.fullmatch(owner)):
        raise WrongType("'owner' must be USER, USER:GROUP or :GROUP, got %r" % (owner,))
    relay = data.get("relay")
    if relay is None:           # as every optional field: null is the default
        relay = True
    if not isinstance(relay, bool):
        raise WrongType("'relay' must be true (the default: a streamed copy may go through a tree of workers) or "
                        "false (the master sends it to each worker itself), got %r" % (relay,))
    terms, listed = target(data.get("workers"), data.get("exclude"), max_pool_jobs)
    notify = notify_list(data.get("notify"), notify_allow or AllowList())
    if blob is not None:
        return PoolRequest(cmd="copy to %s" % dest, terms=terms, listed=listed,
                           target={"workers": data.get("workers", "*"), "exclude": data.get("exclude")},
                           copy=CopySpec(dest, "", -1, blob, mode, owner, blob, unpack, relay=relay), notify=notify,
                           **rollout(data))
    try:
        size = len(base64.b64decode(content, validate=True))
    except ValueError:
        raise WrongType("'content' is not base64")
    if size > max_file_bytes:
        raise PayloadTooLarge("the file is %d bytes; a copy carries at most %d (it travels in one frame: raise "
                              "max_frame_bytes on the master and the workers, and max_body_bytes, to send more)"
                              % (size, max_file_bytes))
    digest = hashlib.sha256(base64.b64decode(content)).hexdigest()
    return PoolRequest(cmd="copy to %s (%d bytes)" % (dest, size), terms=terms, listed=listed,
                       target={"workers": data.get("workers", "*"), "exclude": data.get("exclude")},
                       copy=CopySpec(dest, content, size, digest, mode, owner, relay=relay), notify=notify,
                       **rollout(data))


FETCH_FIELDS = ("workers", "exclude", "path", "batch", "maxFailures", "offline", "queueTimeout", "notify")


def fetch_request(body: bytes, max_pool_jobs: int, notify_allow: AllowList = None) -> PoolRequest:
    """POST /fetch: a file (``path``) each targeted worker reads and sends to the master."""
    data = parse_json_body(body)
    _reject_unknown(data, FETCH_FIELDS)
    path = _absolute_path(data, "path", "to read")
    terms, listed = target(data.get("workers"), data.get("exclude"), max_pool_jobs)
    return PoolRequest(cmd="fetch %s" % path, terms=terms, listed=listed,
                       target={"workers": data.get("workers", "*"), "exclude": data.get("exclude")},
                       copy=CopySpec(path, "", -1, "", fetch=True),
                       notify=notify_list(data.get("notify"), notify_allow or AllowList()), **rollout(data))


def _absolute_path(data, field, what):
    """``data[field]``: the absolute path of a file on each worker (``what``: to write, to read)."""
    path = data.get(field)
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise WrongType("'%s' must be the absolute path of the file %s on each worker" % (field, what))
    _check_texts(field, [path])
    return path


def _copy_mode(mode):
    """A copy's mode as a number, from "0644" or 420; None if not given."""
    if mode is None:
        return None
    if isinstance(mode, str) and re.fullmatch(r"0?[0-7]{3,4}", mode):
        return int(mode, 8)
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777:
        raise WrongType("'mode' must be an octal mode such as \"0644\", got %r" % (mode,))
    return mode


def rollout(data: dict) -> dict:
    """batch (a count, or "N%" of the pool's jobs), maxFailures, offline ("fail" or "queue")
    and queueTimeout (seconds, with "queue") of a job request, as PoolRequest's batch,
    max_failures, offline (an OfflinePolicy) and queue_timeout; absent ones are None."""
    batch = data.get("batch")
    if batch is not None:
        if isinstance(batch, str) and re.fullmatch(r"[0-9]{1,3}%", batch):
            if not 1 <= int(batch[:-1]) <= 100:
                raise OutOfRange("'batch' as a percentage must be 1%% to 100%%, got %r" % batch)
        elif isinstance(batch, bool) or not isinstance(batch, int):
            raise WrongType("'batch' must be a number of jobs or a percentage like \"25%%\", got %r" % (batch,))
        elif batch < 1:
            raise OutOfRange("'batch' must be at least 1, got %r" % batch)
    max_failures = data.get("maxFailures")
    if max_failures is not None and (isinstance(max_failures, bool) or not isinstance(max_failures, int)):
        raise WrongType("'maxFailures' must be a whole number of failed jobs")
    if max_failures is not None and max_failures < 0:
        raise OutOfRange("'maxFailures' must be 0 or more, got %r" % max_failures)
    offline = data.get("offline", OfflinePolicy.FAIL.value)
    if offline not in values(OfflinePolicy):
        raise WrongType("'offline' must be \"fail\" (an offline worker's job ends offline at once) or \"queue\" "
                        "(it waits for the worker), got %r" % (offline,))
    queue_timeout = data.get("queueTimeout")
    if queue_timeout is not None:
        if offline != OfflinePolicy.QUEUE:
            raise WrongType("'queueTimeout' goes with \"offline\": \"queue\"")
        if isinstance(queue_timeout, bool) or not isinstance(queue_timeout, (int, float)):
            raise WrongType("'queueTimeout' must be a number of seconds")
        if not 0 < queue_timeout <= MAX_TIMEOUT_SECONDS:
            raise OutOfRange("'queueTimeout' must be more than 0 and at most %d seconds" % MAX_TIMEOUT_SECONDS)
    return {"batch": batch, "max_failures": max_failures, "offline": OfflinePolicy(offline),
            "queue_timeout": queue_timeout}


def _check_texts(field, texts):
    """A NUL byte cannot reach exec(), a lone surrogate cannot reach the store: refuse both here."""
    for text in texts:
        if "\x00" in text:
            raise NulByte("'%s' contains a NUL byte, which no command can receive" % field)
        if not storable(text):
            raise UnencodableText("'%s' contains a lone surrogate (a \\ud800-\\udfff escape without its pair), "
                                  "which is not text" % field)


def kill_request(body):
    if not body or not body.strip():
        return {"workers": []}
    data = parse_json_body(body)
    _reject_unknown(data, KILL_FIELDS)
    return {"workers": _worker_list(data.get("workers"))}


def _number(query, name, default, low, high):
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise WrongType("'%s' must be a number, got %r" % (name, raw))
    if not low <= value <= high:    # NaN fails this too
        raise OutOfRange("'%s' must be between %g and %g, got %r" % (name, low, high, raw))
    return value


def wait_seconds(query):
    return _number(query, "wait", 0.0, 0.0, MAX_WAIT_SECONDS)


def submit_wait_seconds(query):
    """POST /job's ``?wait=``: None without it (answer at once, as always), else as GET /pool/ID's."""
    return None if query.get("wait") in (None, "") else wait_seconds(query)


def pools_query(query):
    status = query.get("status") or None
    if status is not None and status not in values(PoolStatus):
        raise WrongType("'status' must be %s, got %r" % (" or ".join(values(PoolStatus)), status))
    before = query.get("before") or None
    if before is not None:
        _check_texts("before", [before])
    limit = int(_number(query, "limit", 50, 1, MAX_PAGE))
    return {"status": status, "before": before, "limit": limit}


ROLES = ("active", "standby")


def health_query(query):
    """GET /health?role=: the role a load balancer's check asks for, or None."""
    role = query.get("role") or None
    if role is not None and role not in ROLES:
        raise WrongType("'role' must be %s, got %r" % (" or ".join(ROLES), role[:50]))
    return role
