"""Pool notifications' rules, pure: the ``notify`` field of POST /job and POST /copy, a
pool's outcome, the summary that is sent, its signature, and when to try again.

What a receiver gets (docs/api.md, "Notifications"): a POST whose body is the summary as
JSON, with

* ``X-PCCI-Delivery``: the notification's id, the same on every attempt (at-least-once
  delivery: a receiver that must act once dedupes on it);
* ``X-PCCI-Event``: the pool's outcome, ``done`` or ``failed``;
* ``X-PCCI-Timestamp``: the attempt's time, Unix seconds;
* ``X-PCCI-Signature: sha256=<hex>`` (with a ``secret``): HMAC-SHA256 with the secret as
  key over ``<timestamp>.<body bytes>``, so a replayed old request fails a receiver that
  checks the timestamp is recent.
"""

import hashlib
import hmac
import json
from typing import NamedTuple, Optional, Tuple

from ..clock import iso_time
from ..errors import NotifyNotAllowed, OutOfRange, WrongType
from ..states import DeliveryState, JobState, NotifyOn, values
from .notify_allow import AllowList, UrlRefused, parse_url, refusal_at_submit

MAX_NOTIFY = 4                  # notifications a pool
MAX_SECRET_CHARS = 256
MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 2.0       # then doubling (with jitter), up to
MAX_RETRY_SECONDS = 600.0
# What the summary carries of a pool: bounded, whatever the pool's size.
MAX_CMD_CHARS = 2000
MAX_NAMED_WORKERS = 50          # of the jobs that did not succeed
MAX_ERROR_CHARS = 200           # of an attempt's error, as recorded
DEFAULT_ON = (NotifyOn.FAILED.value,)


class Notify(NamedTuple):
    url: str
    on: Tuple[str, ...]         # NotifyOn values
    secret: Optional[str]


def notify_list(value, allow: AllowList) -> Tuple[Notify, ...]:
    """The checked ``notify`` field: at most MAX_NOTIFY {url, on, secret}, each URL allowed by
    ``allow`` as far as can be told before resolving it (NotifyNotAllowed says why not)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WrongType("'notify' must be a list of {\"url\": ..., \"on\": [...], \"secret\": ...}")
    if len(value) > MAX_NOTIFY:
        raise OutOfRange("'notify' lists %d notifications; at most %d" % (len(value), MAX_NOTIFY))
    return tuple(_one(n, entry, allow) for n, entry in enumerate(value))


def _one(n, entry, allow):
    where = "'notify[%d]" % n
    if not isinstance(entry, dict) or "url" not in entry:
        raise WrongType("%s' must be an object with a \"url\"" % where)
    unknown = sorted(set(entry) - {"url", "on", "secret"})
    if unknown:
        raise WrongType("%s' has unknown field(s) %s; expected url, on, secret" % (where, ", ".join(unknown)))
    try:
        url = parse_url(entry["url"])
    except UrlRefused as exc:
        raise NotifyNotAllowed("%s.url': %s" % (where, exc))
    refusal = refusal_at_submit(url, allow)
    if refusal is not None:
        raise NotifyNotAllowed("%s.url': %s" % (where, refusal))
    on = entry.get("on", list(DEFAULT_ON))
    if (not isinstance(on, list) or not on or len(on) > len(NotifyOn)
            or not all(isinstance(word, str) and word in values(NotifyOn) for word in on)):
        raise WrongType("%s.on' must be a non-empty list of %s" % (where, ", ".join(values(NotifyOn))))
    secret = entry.get("secret")
    if secret is not None and not (isinstance(secret, str) and 0 < len(secret) <= MAX_SECRET_CHARS
                                   and all(" " <= char <= "~" for char in secret)):
        raise WrongType("%s.secret' must be 1 to %d printable ASCII characters" % (where, MAX_SECRET_CHARS))
    return Notify(entry["url"], tuple(dict.fromkeys(on)), secret)


def outcome(pool) -> NotifyOn:
    """``done`` when every job succeeded, else ``failed``."""
    succeeded = all(job.state is JobState.SUCCEEDED for job in pool.jobs.values())
    return NotifyOn.DONE if succeeded else NotifyOn.FAILED


def fires(on, result: NotifyOn) -> bool:
    return NotifyOn.FINISHED.value in on or result.value in on


def summary(pool, result: NotifyOn, delivery: str) -> bytes:
    """The body sent for an ended pool: bounded, without output or env."""
    not_succeeded = [name for name, job in pool.jobs.items() if job.state is not JobState.SUCCEEDED]
    data = {
        "delivery": delivery,
        "event": result.value,
        "pool": {
            "id": pool.pool_id,
            "url": "/pool/%s" % pool.pool_id,
            "cmd": pool.cmd[:MAX_CMD_CHARS],
            "cmdTruncated": len(pool.cmd) > MAX_CMD_CHARS,
            "exitCode": pool.exit_code,
            "createdTime": iso_time(pool.created),
            "endTime": iso_time(pool.end_time),
            "states": pool.state_counts(),
            "jobs": len(pool.jobs),
            "submittedBy": pool.submitted_by,
            "scheduledBy": pool.scheduled_by,
            "scheduledFor": iso_time(pool.scheduled_due),
            "notSucceeded": not_succeeded[:MAX_NAMED_WORKERS],
            "notSucceededTruncated": len(not_succeeded) > MAX_NAMED_WORKERS,
        },
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 keyed with the secret over ``<timestamp>.<body>``."""
    material = str(int(timestamp)).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), material, hashlib.sha256).hexdigest()


def retry_delay(attempts_made: int, first: float, jitter: float) -> float:
    """Seconds before the next attempt after ``attempts_made`` failed ones: ``first``, doubling
    up to MAX_RETRY_SECONDS, times ``jitter`` (a random number in [0.5, 1), so receivers that
    came back are not hit by every master's retries at once)."""
    return min(MAX_RETRY_SECONDS, first * 2 ** max(0, attempts_made - 1)) * jitter


def attempt_record(at_ms: int, status: Optional[int] = None, error: Optional[str] = None) -> dict:
    record = {"at": iso_time(at_ms)}
    if status is not None:
        record["status"] = status
    if error is not None:
        record["error"] = error[:MAX_ERROR_CHARS]
    return record


def next_state(attempts_made: int, succeeded: bool) -> DeliveryState:
    """The delivery's state after an attempt: sent, failed (no attempts left) or pending."""
    if succeeded:
        return DeliveryState.SENT
    return DeliveryState.FAILED if attempts_made >= MAX_ATTEMPTS else DeliveryState.PENDING
