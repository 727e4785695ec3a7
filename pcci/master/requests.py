"""Checks on REST request bodies and query strings (pure): plain values in, plain values out.

Each problem raises a BadRequest that says which field is wrong and what was expected.
"""

import json

from ..errors import BadRequest

MAX_WAIT_SECONDS = 3600.0
MAX_PAGE = 1000


def parse_json_body(body):
    if not body or not body.strip():
        raise BadRequest("the request body is empty; send a JSON object", code="empty_body")
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest("the request body is not valid JSON: %s" % exc, code="malformed_json")
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object", code="wrong_type")
    return data


def _reject_unknown(data, known):
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise BadRequest("unknown field(s) %s; expected some of %s" % (", ".join(unknown), ", ".join(known)),
                         code="unknown_field")


def _worker_list(value, field="workers"):
    """None, "*" or [] mean every online worker; otherwise a list of distinct names."""
    if value is None or value == "*":
        return []
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise BadRequest("'%s' must be \"*\" or a list of worker names" % field, code="wrong_type")
    if value == ["*"]:
        return []
    if len(set(value)) != len(value):
        raise BadRequest("'%s' lists a worker twice" % field, code="duplicate_worker")
    return list(value)


def job_request(body):
    data = parse_json_body(body)
    _reject_unknown(data, ("cmd", "workers", "timeout", "env", "cwd"))
    cmd = data.get("cmd")
    if not isinstance(cmd, str):
        raise BadRequest("'cmd' must be a string holding a shell command", code="wrong_type")
    if not cmd.strip():
        raise BadRequest("'cmd' is empty; give a shell command", code="empty_cmd")
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise BadRequest("'timeout' must be a number of seconds greater than zero", code="wrong_type")
    env = data.get("env")
    if env is not None and (not isinstance(env, dict) or not all(
            isinstance(k, str) and k and "=" not in k and isinstance(v, str) for k, v in env.items())):
        raise BadRequest("'env' must be an object of string names (without '=') to string values",
                         code="wrong_type")
    cwd = data.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd):
        raise BadRequest("'cwd' must be a directory path", code="wrong_type")
    _reject_nul_bytes(cmd=cmd, cwd=cwd, env=env)
    return {"cmd": cmd, "workers": _worker_list(data.get("workers")), "timeout": timeout, "env": env, "cwd": cwd}


def _reject_nul_bytes(**fields):
    """A NUL byte cannot reach exec(): refuse it here, not on the worker."""
    for name, value in fields.items():
        texts = [value] if isinstance(value, str) else [text for pair in (value or {}).items() for text in pair]
        if any("\x00" in text for text in texts):
            raise BadRequest("'%s' contains a NUL byte, which no command can receive" % name, code="nul_byte")


def kill_request(body):
    if not body or not body.strip():
        return {"workers": []}
    data = parse_json_body(body)
    _reject_unknown(data, ("workers",))
    return {"workers": _worker_list(data.get("workers"))}


def _number(query, name, default, low, high):
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest("'%s' must be a number, got %r" % (name, raw), code="wrong_type")
    if not low <= value <= high:
        raise BadRequest("'%s' must be between %g and %g, got %r" % (name, low, high, raw), code="out_of_range")
    return value


def wait_seconds(query):
    return _number(query, "wait", 0.0, 0.0, MAX_WAIT_SECONDS)


def pools_query(query):
    status = query.get("status") or None
    if status not in (None, "running", "done"):
        raise BadRequest("'status' must be running or done, got %r" % status, code="wrong_type")
    limit = int(_number(query, "limit", 50, 1, MAX_PAGE))
    return {"status": status, "before": query.get("before") or None, "limit": limit}
