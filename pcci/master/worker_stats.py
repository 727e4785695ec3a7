"""A worker's heartbeat stats, checked against the one list of their fields (pure).

Whatever a worker puts in its stats is shown to every reader of GET /workers, the
event stream, the dashboard and /metrics, and kept in the store. So the master keeps
only the fields listed in ``FIELDS``, each of its documented type and range; a field
that is not (a word where a number goes, a number out of range, text that is not
UTF-8, a list of the wrong length) is dropped and named, the rest of the stats are
kept, and the worker stays connected. A field this release does not know (a newer
worker's) is left out without complaint. NaN and Infinity never get this far: they
are not JSON, and the frame decoder refuses them (pcci/framing.py).

Every field may be null ("not reported": a board without a temperature sensor).
The shape (docs/api.md, ``stats``)::

    cpuPercent   number 0-100            loadAverage  [number, number, number], each 0-1e9
    cpuCount     whole number 1-2^20     temperature  number -273.15-1000 (°C)
    bootTime     whole number, seconds since 1970, up to year 9999
    memory       {total, available: whole number 0-2^63-1 (bytes); percent: 0-100}
    disk         {path: text of 1-4096 characters; total, free: bytes; percent: 0-100}
"""

import math

from ..protocol import MAX_TIME_MS, storable

MAX_BYTES = 2 ** 63 - 1          # a signed 64-bit count: any store and any Prometheus float hold it
MAX_CPUS = 2 ** 20
MAX_LOAD = 1e9
MAX_PATH_CHARS = 4096
# A worker that keeps sending bad stats is named in the log once, then at most this often.
COMPLAINT_INTERVAL_MS = 10 * 60 * 1000

_DROP = object()


def _schema(check, **schema):
    """Mark a check with its OpenAPI schema (``openapi_schema``)."""
    check.schema = dict(schema, nullable=True)
    return check


def _number(low, high):
    def check(value):
        # The range first: an int of 400 digits has no float to test for finiteness.
        if type(value) not in (int, float) or not low <= value <= high or not math.isfinite(value):
            return _DROP
        return value
    return _schema(check, type="number", minimum=low, maximum=high)


def _whole(low, high):
    def check(value):
        if type(value) is float and value.is_integer():
            value = int(value)      # 4.0e9 from a worker written in another language
        if type(value) is not int or not low <= value <= high:
            return _DROP
        return value
    return _schema(check, type="integer", minimum=low, maximum=high)


def _text(max_chars):
    def check(value):
        if type(value) is not str or not 0 < len(value) <= max_chars or not storable(value):
            return _DROP
        return value
    return _schema(check, type="string", minLength=1, maxLength=max_chars)


def _numbers(count, each):
    def check(value):
        if type(value) is not list or len(value) != count:
            return _DROP
        checked = [each(item) for item in value]
        return _DROP if any(item is _DROP for item in checked) else checked
    item = {key: value for key, value in each.schema.items() if key != "nullable"}
    return _schema(check, type="array", items=item, minItems=count, maxItems=count)


_PERCENT = _number(0, 100)
_BYTES = _whole(0, MAX_BYTES)

# The one list of stats fields: name -> check (a value, or _DROP), or a section's fields.
FIELDS = {
    "cpuPercent": _PERCENT,
    "cpuCount": _whole(1, MAX_CPUS),
    "loadAverage": _numbers(3, _number(0, MAX_LOAD)),
    "memory": {"total": _BYTES, "available": _BYTES, "percent": _PERCENT},
    "disk": {"path": _text(MAX_PATH_CHARS), "total": _BYTES, "free": _BYTES, "percent": _PERCENT},
    "temperature": _number(-273.15, 1000),
    "bootTime": _whole(0, MAX_TIME_MS // 1000),
}


def clean(stats: object) -> "tuple[dict | None, list[str]]":
    """(the stats with only ``FIELDS``, each of its type; the names of the fields dropped
    as malformed, e.g. ``memory.total``). No stats (None) give (None, []), stats that
    are not a JSON object (None, ["stats"]): None keeps the worker's last stats."""
    if stats is None:
        return None, []
    if type(stats) is not dict:
        return None, ["stats"]
    kept, dropped = {}, []
    _clean_into(stats, FIELDS, kept, dropped, "")
    return kept, dropped


def _clean_into(given, fields, kept, dropped, prefix):
    for name, check in fields.items():
        if name not in given:
            continue
        value = given[name]
        if value is None:
            kept[name] = None
        elif isinstance(check, dict):
            if type(value) is dict:
                kept[name] = {}
                _clean_into(value, check, kept[name], dropped, prefix + name + ".")
            else:
                dropped.append(prefix + name)
        else:
            value = check(value)
            if value is _DROP:
                dropped.append(prefix + name)
            else:
                kept[name] = value


def openapi_schema() -> dict:
    """``stats`` in the OpenAPI document, from ``FIELDS`` (every field optional)."""
    def schema(fields):
        return {"type": "object", "nullable": True, "additionalProperties": False,
                "properties": {name: schema(check) if isinstance(check, dict) else check.schema
                               for name, check in fields.items()}}
    return schema(FIELDS)


class Complaints:
    """When to log that a worker sent malformed stats: the first time, then at most once
    per ``interval_ms`` (a worker with a bug sends them with every heartbeat)."""

    def __init__(self, interval_ms: int = COMPLAINT_INTERVAL_MS):
        self.interval_ms = interval_ms
        self.logged_at = None
        self.unlogged = 0

    def due(self, now_ms: int) -> "int | None":
        """None if this one goes unlogged, else how many went unlogged before it."""
        if self.logged_at is not None and now_ms - self.logged_at < self.interval_ms:
            self.unlogged += 1
            return None
        unlogged, self.unlogged, self.logged_at = self.unlogged, 0, now_ms
        return unlogged
