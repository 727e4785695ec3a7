"""The master as Python calls: run a command, wait for it, stream its lines, kill it,
list workers and pools, copy a file (docs/client.md)."""

import base64
import os
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from ..states import OfflinePolicy, PoolStatus
from .events import follow_lines
from .transport import Client, PcciError, settings
from .values import Job, Line, Worker

Target = Union[str, Sequence[str], None]
DONE = PoolStatus.DONE.value


def _target(value: Target) -> Union[str, List[str], None]:
    """A target expression ("pi[1-4],@rack-a") or a list of names/expressions, as the API takes."""
    if value is None or isinstance(value, str):
        return value
    return list(value)


class Master:
    """One PCCI cluster, through its master (or several: ``url`` may list them, comma
    separated; an unreachable one is passed over and a standby's 307 is followed).

    ``token`` is an API token (``read`` lists and reads, ``operate`` runs and kills);
    ``cacert`` a CA file for https, or ``fingerprint`` the master's certificate pin."""

    def __init__(self, url: str = "http://127.0.0.1:8080", token: Optional[str] = None,
                 cacert: Optional[str] = None, fingerprint: Optional[str] = None) -> None:
        self.transport = Client(url, token, cacert, fingerprint)

    @classmethod
    def from_environment(cls, url: Optional[str] = None, token: Optional[str] = None) -> "Master":
        """As the pcci command finds its master: ``url`` and ``token`` if given, else
        PCCI_URL, PCCI_TOKEN / PCCI_TOKEN_FILE, PCCI_CACERT, PCCI_FINGERPRINT, then
        ~/.config/pcci/client.yaml."""
        return cls(*settings(url, token))

    @property
    def url(self) -> str:
        """The master that answered last (after a failover, the active one)."""
        return self.transport.url

    def run(self, cmd: str, target: Target = None, *, exclude: Target = None, timeout: Optional[float] = None,
            env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None, user: Optional[str] = None,
            batch: Union[int, str, None] = None, max_failures: Optional[int] = None, queue: bool = False,
            queue_timeout: Optional[float] = None, stdin: Union[str, bytes, None] = None,
            wait: Optional[float] = None, notify: Optional[List[Dict[str, Any]]] = None) -> "Pool":
        """Submit ``cmd`` on every targeted worker (None: every online one) and return the
        pool at once; ``pool.wait()`` for the results. With ``wait``, the same request waits
        up to that many seconds for the pool to finish (one round trip: ``pool.done`` says
        whether it did). While the master says it is busy (429) the submit waits as it
        asks, for up to a minute. ``notify``: POST /job's (``[{"url": ..., "on": ["failed"],
        "secret": ...}]``)."""
        options = {"user": user, "batch": batch, "maxFailures": max_failures, "notify": notify,
                   "offline": OfflinePolicy.QUEUE.value if queue or queue_timeout else None, "queueTimeout": queue_timeout,
                   "stdin": {"base64": base64.b64encode(stdin).decode("ascii")} if isinstance(stdin, bytes) else stdin}
        submitted = self.transport.submit(cmd, _target(target), timeout, env, cwd, exclude=_target(exclude),
                                          options={k: v for k, v in options.items() if v is not None}, wait=wait)
        return Pool(self, submitted)

    def copy(self, source: Union[str, bytes], dest: str, target: Target = None, *, exclude: Target = None,
             mode: Optional[str] = None, owner: Optional[str] = None,
             notify: Optional[List[Dict[str, Any]]] = None) -> "Pool":
        """Write a file on every targeted worker, atomically: ``source`` is a local path or
        the bytes themselves."""
        if isinstance(source, str):
            with open(os.path.expanduser(source), "rb") as handle:
                source = handle.read()
        body: Dict[str, Any] = {"dest": dest, "content": base64.b64encode(source).decode("ascii")}
        for name, value in (("workers", _target(target)), ("exclude", _target(exclude)), ("mode", mode),
                            ("owner", owner), ("notify", notify)):
            if value is not None:
                body[name] = value
        return Pool(self, self.transport.call("POST", "/copy", body))

    def pool(self, pool_id: str) -> "Pool":
        return Pool(self, self.transport.pool(pool_id))

    def pools(self, status: Optional[str] = None, limit: int = 50, before: Optional[str] = None) -> List["Pool"]:
        """Newest first; ``before`` a pool id to page back from. Each pool's jobs hold their
        states but not their output: ``refresh()`` one for it."""
        return [Pool(self, data) for data in self.transport.pools(status, limit, before)["pools"]]

    def workers(self, target: Target = None, exclude: Target = None) -> List[Worker]:
        """Every worker the master knows (online or not), or those a target resolves to."""
        def text(value: Target) -> Optional[str]:
            value = _target(value)
            return ",".join(value) if isinstance(value, list) else value
        return [Worker.from_json(data) for data in self.transport.workers(text(target), text(exclude))]

    def kill(self, pool_id: str, nodes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        return self.transport.kill(pool_id, list(nodes) if nodes else None)


class Pool:
    """A submitted pool: its id at once, its jobs as they were when last read."""

    def __init__(self, master: Master, data: Dict[str, Any]) -> None:
        self.master = master
        self.id: str = data["id"]
        self.data = data
        self.jobs: Dict[str, Job] = {}
        self._read(data)

    def _read(self, data: Dict[str, Any]) -> None:
        self.data = data
        # A submit's answer (and GET /pools) gives each job's state alone; GET /pool/ID all of it.
        self.jobs = {node: Job.from_json(node, job if isinstance(job, dict) else {"state": job})
                     for node, job in (data.get("jobs") or {}).items()}

    @property
    def status(self) -> str:
        return self.data.get("status", "")

    @property
    def done(self) -> bool:
        return self.status == DONE

    @property
    def exit_code(self) -> Optional[int]:
        return self.data.get("exitCode")

    @property
    def ok(self) -> bool:
        """Done, and every job succeeded."""
        return self.done and all(job.ok for job in self.jobs.values())

    def failed(self) -> Dict[str, Job]:
        return {node: job for node, job in self.jobs.items() if not job.ok}

    def refresh(self, wait: float = 0) -> "Pool":
        """Read the pool again, waiting up to ``wait`` seconds for it to finish."""
        self._read(self.master.transport.pool(self.id, wait=wait))
        return self

    def wait(self, timeout: Optional[float] = None, step: float = 30) -> "Pool":
        """Until the pool is done (each request waits on the master: no polling interval);
        PcciError with code ``timeout`` if ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            left = step if deadline is None else min(step, deadline - time.monotonic())
            if left <= 0:
                raise PcciError("pool %s is not done after %gs" % (self.id, timeout), code="timeout")
            self.refresh(wait=left)
        return self

    def stream(self) -> Iterator[Line]:
        """Every line its jobs print, as they print it, until the pool is done; then the
        pool is read once more, whole (``jobs``, ``exit_code``)."""
        transport = self.master.transport
        yield from follow_lines(lambda last_id: transport.events(self.id, last_id), self.id)
        self.refresh()

    def kill(self, nodes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        return self.master.kill(self.id, nodes)

    def __repr__(self) -> str:
        return "<Pool %s %s (%d jobs)>" % (self.id, self.status, len(self.jobs))
