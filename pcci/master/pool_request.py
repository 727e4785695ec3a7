"""A checked request for a new pool (POST /job, POST /copy): what validation hands the pool core.

Frozen: the API adds who submitted it with ``dataclasses.replace``, nothing mutates it.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

from ..model import CopySpec
from ..states import OfflinePolicy
from ..targets import Term
from .notify_rules import Notify


@dataclass(frozen=True)
class PoolRequest:
    cmd: str                                # the shell command; for a copy, its description
    terms: Sequence[Term]                   # the target, parsed (validation.target)
    listed: bool                            # whether the target is a plain list of names
    timeout: Optional[float] = None
    env: Optional[dict] = None
    cwd: Optional[str] = None
    user: Optional[str] = None
    stdin: Optional[str] = None             # the jobs' standard input, base64 (None: /dev/null)
    target: Optional[dict] = None           # {"workers": ..., "exclude": ...} as submitted
    batch: Optional[Union[int, str]] = None     # a count or "N%" of the pool's jobs
    max_failures: Optional[int] = None
    offline: OfflinePolicy = OfflinePolicy.FAIL
    queue_timeout: Optional[float] = None   # seconds, with OfflinePolicy.QUEUE
    copy: Optional[CopySpec] = None         # a file to write instead of running cmd
    submitted_by: Optional[str] = None      # the API token's name
    submitter_scope: Optional[str] = None   # and its scope (an admin's notifications pass the outbox's total cap)
    submitted_from: Optional[str] = None    # the client's address
    notify: Tuple[Notify, ...] = ()         # where to POST the pool's summary when it ends (notify_rules)
    scheduled_by: Optional[str] = None      # the schedule firing it (schedules.py), or None
    scheduled_due: Optional[int] = None     # the due time it fires for, wall ms
