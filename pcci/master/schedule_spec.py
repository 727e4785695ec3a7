"""A schedule, checked, pure: what POST /schedules and PUT /schedules/NAME take.

A schedule is its own few fields (``SCHEDULE_FIELDS``) and a pool template: every other
field is the body POST /job takes (or, with ``copy``, POST /copy's), checked by the very
parser those routes use (``validation.job_request``, ``copy_request``) when the schedule
is written and again at each firing. A field POST /job learns is therefore a schedule's
field too, with no code here. The body is stored as given (``Schedule.body``); a PUT
merges its fields into it (``null`` removes one) and checks the result as a POST would.
"""

import dataclasses
import json
import re
from enum import Enum
from typing import NamedTuple, Optional

from ..errors import PayloadTooLarge, TooManySchedules, WrongType
from . import schedule_times, validation
from .pool_request import PoolRequest

SCHEDULE_FIELDS = ("name", "when", "timezone", "missed", "enabled", "managedBy", "copy")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A schedule's body as stored: 1,000 of them (max_schedules' default) take at most 64 MiB.
MAX_SCHEDULE_BYTES = 64 * 1024
COPY_FIELDS = ("dest", "content", "mode", "owner", "relay")


class Missed(str, Enum):
    """What a master that finds a due time passed (it was down, or the lease moved) does."""
    SKIP = "skip"                   # nothing: the next due time runs as usual
    RUN_ONCE = "run_once"           # one pool, late, for all the due times missed


class Outcome(str, Enum):
    """How one due time of a schedule went."""
    SUCCEEDED = "succeeded"         # its pool ended with every job succeeded
    FAILED = "failed"               # its pool ended with a job not succeeded
    KILLED = "killed"               # its pool was killed
    REFUSED = "refused"             # no pool: the template no longer checks out, or no worker matched
    SKIPPED = "skipped"             # no pool: the due time was missed (missed: skip)
    RUNNING = "running"             # its pool has not ended yet


@dataclasses.dataclass(frozen=True)
class Schedule:
    name: str
    when: schedule_times.When
    missed: Missed
    enabled: bool
    body: dict                      # as given (merged over PUTs): what the schedule and its template are


def name(text) -> str:
    if not isinstance(text, str) or not NAME.fullmatch(text):
        raise WrongType("a schedule's name must be 1-64 letters, digits, '_', '.' or '-' (not first), got %r"
                        % (text if not isinstance(text, str) else text[:80],))
    return text


def template(body: dict):
    """(kind, the body of POST /job or POST /copy) that a schedule's body holds."""
    rest = {key: value for key, value in body.items() if key not in SCHEDULE_FIELDS}
    copy = body.get("copy")
    if copy is None:
        return "job", rest
    if not isinstance(copy, dict) or set(copy) - set(COPY_FIELDS):
        raise WrongType("'copy' must be an object of %s (what POST /copy takes besides the target)"
                        % ", ".join(COPY_FIELDS))
    if "cmd" in rest:
        raise WrongType("a schedule runs 'cmd' or makes a 'copy', not both")
    return "copy", dict(rest, **copy)


class Limits(NamedTuple):
    """What POST /job and POST /copy check a body against, from the master's config."""
    max_pool_jobs: int
    max_copy_bytes: int             # api.largest_copy
    notify_allow: object = None     # config's notify_allow (notify_rules)
    min_interval: float = schedule_times.MIN_INTERVAL_SECONDS      # schedule_min_interval


def limits_of(settings, max_copy_bytes) -> Limits:
    return Limits(settings.max_pool_jobs, max_copy_bytes, settings.notify_allow, settings.schedule_min_interval)


def pool_request(body: dict, limits: Limits) -> PoolRequest:
    """The pool a schedule's body asks for, checked as POST /job (or POST /copy) checks it."""
    kind, fields = template(body)
    raw = json.dumps(fields).encode()
    if kind == "copy":
        request = validation.copy_request(raw, limits.max_pool_jobs, limits.max_copy_bytes, limits.notify_allow)
        if request.copy.blob is not None:
            # An uploaded file is purged with the retention; a schedule fires for longer.
            raise WrongType("a scheduled copy carries its file in 'content' (an uploaded file, 'sha256', is "
                            "purged after pool_retention)")
        return request
    return validation.job_request(raw, limits.max_pool_jobs, limits.notify_allow)


def parse(body, limits: Limits) -> Schedule:
    """A checked schedule from its whole body; the API's error (400, 413) says what is wrong."""
    if not isinstance(body, dict):
        raise WrongType("a schedule is a JSON object")
    if len(json.dumps(body)) > MAX_SCHEDULE_BYTES:
        raise PayloadTooLarge("a schedule (its template included) takes at most %d bytes" % MAX_SCHEDULE_BYTES)
    name(body.get("name"))
    try:
        when = schedule_times.parse(body.get("when"), body.get("timezone", "UTC"), limits.min_interval)
    except schedule_times.BadWhen as exc:
        raise WrongType(str(exc))
    missed = body.get("missed", Missed.SKIP.value)
    if missed not in [item.value for item in Missed]:
        raise WrongType("'missed' must be \"skip\" or \"run_once\", got %r" % (missed,))
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise WrongType("'enabled' must be true or false")
    managed_by = body.get("managedBy")
    if managed_by is not None and not (isinstance(managed_by, str) and NAME.fullmatch(managed_by)):
        # A mark for tools that own some schedules (the Ansible role removes its own only).
        raise WrongType("'managedBy' must be 1-64 letters, digits, '_', '.' or '-' (not first)")
    pool_request(body, limits)
    return Schedule(body["name"], when, Missed(missed), enabled, body)


def merged(stored: dict, change) -> dict:
    """A PUT's fields over the stored body; a null removes a field. The name stays."""
    if not isinstance(change, dict):
        raise WrongType("a schedule change is a JSON object of the fields to change")
    if change.get("name", stored["name"]) != stored["name"]:
        raise WrongType("a schedule's name cannot change (delete it and add it anew)")
    body = dict(stored)
    for key, value in change.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    if "cmd" in change and change["cmd"] is not None:
        body.pop("copy", None)
    if "copy" in change and change["copy"] is not None:
        body.pop("cmd", None)
    return body


def timing_changed(old: Optional[Schedule], new: Schedule) -> bool:
    """Whether due times before now stop counting: a new schedule, a new "when" or timezone,
    or one enabled again (what was due while it was off is not "missed")."""
    return old is None or old.when != new.when or (new.enabled and not old.enabled)


def needed_scope(body: dict) -> str:
    """The scope that may add, change or delete a schedule, and that it fires with: a
    schedule that runs as root goes on doing so unattended."""
    return "admin" if body.get("user") == "root" else "operate"


def authority_problem(changed_by: str, body: dict, tokens) -> Optional[str]:
    """Why a schedule may not fire for the token that last changed it (pure), or None: that
    token is no longer in ``tokens`` (revoked) or no longer has the scope the schedule
    needs. On a master without tokens (all is ``local``) nothing is checked."""
    if not tokens:
        return None
    needed = needed_scope(body)
    token = next((token for token in tokens if token.name == changed_by), None)
    if token is None:
        return ("the token %r that last changed it is no longer in api_tokens; a PUT with a current %s token "
                "takes it over" % (changed_by, needed))
    if not token.allows(needed):
        return ("the token %r that last changed it now has scope %s, and the schedule needs %s; a PUT with such a "
                "token takes it over" % (changed_by, token.scope, needed))
    return None


def check_limit(count: int, limit: int):
    if count >= limit:
        raise TooManySchedules("this master holds %d schedules, its max_schedules; delete one or raise the limit"
                         % count)


def outcome_of(pool) -> Outcome:
    """How a scheduled pool went, from its jobs' states."""
    if not pool.done:
        return Outcome.RUNNING
    states = pool.state_counts()
    if states.get("killed"):
        return Outcome.KILLED
    return Outcome.SUCCEEDED if set(states) <= {"succeeded"} and states else Outcome.FAILED
