"""Finished jobs' results on their way to the master: sent, and spooled until acknowledged.

The runner hands every result here; the master link attaches its live link while it
has one. A result is sent, then spooled (written and fsync'd) while the master stores
it -- the spool's docstring says what that keeps -- and stays there until the master's
ack, so it survives a dropped link and a restart of either side. A result that would
not fit in one frame is cut here, at the source, and flagged truncated: sent whole,
the master would refuse it on every reconnect. A result the disk cannot take (it is
full) is kept in memory instead, and logged as not durable.
"""

import json
import logging

from .. import framing
from ..protocol import JSON_BYTES_PER_OUTPUT_BYTE, RESULT_FRAME_OVERHEAD
from .results import as_text, output_blobs

log = logging.getLogger(__name__)


def result_payload(result, blobs):
    """A result's payload: its output as blobs beside its JSON (``blobs``: the master takes
    them, protocol.BLOB_FRAMES) -- the job's bytes, not copied -- or all of it as JSON."""
    if blobs:
        return framing.encode_blob_payload(*output_blobs(result))
    return framing.encode_payload(as_text(result))


def fit_to_frame(result, max_frame_bytes):
    """The result, its output cut (and flagged) until its frame fits max_frame_bytes (pure)."""
    worst_case = JSON_BYTES_PER_OUTPUT_BYTE * (len(result["stdout"]) + len(result["stderr"])) + RESULT_FRAME_OVERHEAD
    if worst_case <= max_frame_bytes:
        return result       # the common case: no need to encode it to know
    result = dict(as_text(result))
    while len(json.dumps(result, ensure_ascii=False).encode("utf-8")) > max_frame_bytes - 1024:
        longer = "stdout" if len(result["stdout"]) >= len(result["stderr"]) else "stderr"
        result[longer] = result[longer][:len(result[longer]) // 2]
        result[longer + "Truncated"] = True
    return result


class Outbox:
    def __init__(self, spool, max_frame_bytes):
        self.spool = spool
        self.max_frame_bytes = max_frame_bytes
        self.link = None        # the live link to the master, while there is one
        self.blobs = True       # whether it takes blob frames (without a link: the spool does)
        self.in_memory = {}     # job id -> result that could not be spooled (a full disk)

    def deliver(self, result):
        result = fit_to_frame(result, self.max_frame_bytes)
        # Encoded once, for the spool and the frame: a large output is not copied twice more.
        payload = result_payload(result, self.blobs)
        # Sent first: the worker's fsync then runs while the master stores the result. Its
        # ack is read by this same hub, so it is handled only once the save has returned.
        try:
            if self.link is not None:
                self.link.send_payload(payload)
        finally:
            self._spool(result, payload)

    def _spool(self, result, payload):
        try:
            self.spool.save(result["job"], payload)
        except OSError as exc:
            # A full (or failing) disk must not cost the result: keep it in memory until
            # the master acknowledges it. It is lost only if the worker stops first.
            log.error("result for %s could not be spooled (%s); delivering it from memory, not durable: "
                      "it is lost if the worker stops before the master acknowledges it", result["job"], exc)
            self.in_memory[result["job"]] = result

    def attach(self, link, blobs=False):
        """A new link (``blobs``: its master takes blob frames): everything not yet
        acknowledged goes out first, oldest first."""
        self.link, self.blobs = link, blobs
        for result in self.spool.pending() + list(self.in_memory.values()):
            link.send_payload(result_payload(result, blobs))

    def detach(self):
        self.link, self.blobs = None, True

    def acknowledged(self, job_id):
        self.in_memory.pop(job_id, None)
        self.spool.remove(job_id)

    def holds(self, job_id):
        return job_id in self.in_memory or self.spool.holds(job_id)

    def unacknowledged(self):
        return self.spool.count() + len(self.in_memory)
