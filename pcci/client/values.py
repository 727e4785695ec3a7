"""What the client hands back: a job, a worker, a line of live output, read from the API's
JSON (pure; every field the API documents, docs/api.md)."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..states import JobState

SUCCEEDED = JobState.SUCCEEDED.value


@dataclass(frozen=True)
class Job:
    """One node's part of a pool."""
    node: str
    state: str
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    start_time: Optional[float] = None
    end_time: Optional[float] = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.state == SUCCEEDED

    @classmethod
    def from_json(cls, node: str, data: Dict[str, Any]) -> "Job":
        return cls(node, data.get("state", ""), data.get("exitCode"), data.get("signal"), data.get("startTime"),
                   data.get("endTime"), data.get("stdout") or "", data.get("stderr") or "",
                   bool(data.get("stdoutTruncated")), bool(data.get("stderrTruncated")))


@dataclass(frozen=True)
class Worker:
    name: str
    online: bool
    address: Optional[str] = None
    labels: Dict[str, str] = field(default_factory=dict)
    stats: Dict[str, Any] = field(default_factory=dict)
    running_jobs: List[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Worker":
        return cls(data["name"], bool(data.get("online")), data.get("address"), dict(data.get("labels") or {}),
                   dict(data.get("stats") or {}), list(data.get("runningJobs") or []))


@dataclass(frozen=True)
class Line:
    """One line a job printed, whole (the last may lack its newline: ``text`` never has one)."""
    node: str
    stream: str             # "stdout" or "stderr"
    text: str
