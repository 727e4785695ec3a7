"""Results kept on the worker's disk until the master acknowledges them.

A result is spooled here as it is sent, so a result survives a dropped link, a master
restart, a worker restart and a power cut; the master's ack deletes it. Each file is
written to a temporary name, fsync'd, renamed, and its directory fsync'd, so a crash
never leaves half a result. The outbox sends a result first and spools it right after,
so the worker's fsync runs while the master stores the result. The master acknowledges
a result only after its own commit, and the ack is read by the same hub only once the
save has returned, so no result leaves the spool before it is on the master's disk. A
worker that loses power after the send and before its fsync, with a master that never
received the result (or lost it too), has the result nowhere: that job ends ``lost``,
as one whose worker lost power while it ran, never with a wrong result. Deleting an
acknowledged one is not fsync'd: if a power cut brings it back, it is sent again and
the master acknowledges it again without storing it twice.
"""

import logging
import os

from .. import framing, protocol
from ..durable_files import make_directories, replace_durably

log = logging.getLogger(__name__)

# What urllib.parse.quote(text, safe="") leaves as it is; the rest of the UTF-8 is %XX.
_UNQUOTED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def file_name(job_id):
    """A job's spool file name: its id as urllib.parse.quote(job_id, safe="") spells it
    (the names spools have always had), without urllib.parse, which an idle worker would
    keep for this alone (0.5 MB with the ipaddress module it imports)."""
    return "".join(chr(byte) if byte in _UNQUOTED else "%%%02X" % byte
                   for byte in job_id.encode("utf-8")) + ".json"


def job_id_of(name):
    """The job id a spool file name stands for (for messages)."""
    quoted = name[:-len(".json")] if name.endswith(".json") else name
    data, at = bytearray(), 0
    while at < len(quoted):
        escape = quoted[at + 1:at + 3]
        if quoted[at] == "%" and len(escape) == 2 and all(c in "0123456789abcdefABCDEF" for c in escape):
            data.append(int(escape, 16))
            at += 3
        else:
            data += quoted[at].encode("utf-8")
            at += 1
    return data.decode("utf-8", "replace")


class Spool:
    def __init__(self, directory):
        self.directory = directory
        make_directories(directory, mode=0o700)

    def _path(self, job_id):
        return os.path.join(self.directory, file_name(job_id))

    def save(self, job_id, payload):
        """Keep a result, given as its payload: UTF-8 JSON (framing.encode_payload) or its
        parts, JSON and output bytes (framing.encode_blob_payload)."""
        replace_durably(self._path(job_id), payload)

    def remove(self, job_id):
        try:
            os.unlink(self._path(job_id))
        except FileNotFoundError:
            pass

    def holds(self, job_id):
        return os.path.exists(self._path(job_id))

    def count(self):
        return sum(1 for name in os.listdir(self.directory) if name.endswith(".json"))

    def pending(self):
        """Every result not yet acknowledged, oldest first. A file that is not a result
        (unreadable, truncated, not JSON, not a result message) is moved aside to NAME.bad
        with one log line: sent, it would cost the link on every reconnect."""
        results = []
        for name in os.listdir(self.directory):
            if not name.endswith(".json"):
                continue
            path = os.path.join(self.directory, name)
            try:
                with open(path, "rb") as handle:
                    results.append(_checked(framing.decode_payload(handle.read())))
            except (OSError, ValueError, framing.FrameError) as exc:
                log.error("spooled result %s is not a usable result (%s); moved aside to %s.bad",
                          job_id_of(name), exc, name)
                os.replace(path, path + ".bad")
        results.sort(key=lambda r: r.get("endTime") or 0)
        return results


def _checked(result):
    """The spooled result if the master would take it; ValueError saying why not."""
    if not isinstance(result, dict) or result.get("type") != protocol.RESULT:
        raise ValueError("not a result message")
    try:
        _, problem = protocol.check_result(result)
    except protocol.ProtocolError as exc:
        raise ValueError(str(exc))
    if problem:
        raise ValueError(problem)
    return result
