"""Results kept on the worker's disk until the master acknowledges them.

A result is spooled here as it is sent, so a result survives a dropped link, a master
restart, a worker restart and a power cut; the master's ack deletes it. The spool is
one journal file (``results/journal``, format in ``spool_records``): a result is a
record appended and fdatasync'd; an ack is a record appended without a sync. A crash
never leaves half a result: a record cut short is found by its length and CRC, and the
journal is cut back to the last whole record. When the master has acknowledged every
result and the journal has passed ``RESTART_BYTES`` it is emptied (truncated, not
synced); when it grows past
``COMPACT_BYTES`` with less than half of it still held, the held results are copied
into a new journal that replaces it (written, fsync'd, renamed, directory fsync'd).

Why a journal, not a file per result: a new file costs a create, an fsync, a rename,
a directory fsync and, at the ack, an unlink -- measured 0.64 ms of CPU and two journal
commits of the filesystem per result, against 0.06 ms for an append and an fdatasync
(docs/performance.md, "The worker's CPU per job").

The outbox sends a result first and spools it right after, so the worker's fdatasync
runs while the master stores the result. The master acknowledges a result only after
its own commit, and the ack is read by the same hub only once the save has returned,
so no result leaves the spool before it is on the master's disk. A worker that loses
power after the send and before its sync, with a master that never received the
result (or lost it too), has the result nowhere: that job ends ``lost``, as one whose
worker lost power while it ran, never with a wrong result. An ack is not synced: if a
power cut brings the result back, it is sent again and the master acknowledges it
again without storing it twice.

A spool of an older release (one ``NAME.json`` file per result) is taken into the
journal when the worker starts.
"""

import logging
import os

from .. import framing, protocol
from ..durable_files import PRIVATE_FILE, fsync_directory, make_directories
from . import spool_records
from .spool_records import ACK, RESULT

log = logging.getLogger(__name__)

JOURNAL = "journal"
# Past this size, a journal holding less than half of it in results is rewritten.
COMPACT_BYTES = 16 << 20
# Past this size, a journal holding no result is emptied (truncated). Not at every ack:
# a file cut and grown again costs its blocks' allocation at every sync.
RESTART_BYTES = 1 << 20
COPY_CHUNK = 1 << 20

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
    def __init__(self, directory, compact_bytes=COMPACT_BYTES):
        self.directory = directory
        self.compact_bytes = compact_bytes
        make_directories(directory, mode=0o700)
        self.path = os.path.join(directory, JOURNAL)
        self._fd = None
        self._end = 0
        self._held = {}         # job id -> (payload offset, payload length) in the journal
        self._open()
        self._take_older_files()

    # -- the journal ------------------------------------------------------------------
    def _open(self):
        created = not os.path.exists(self.path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        os.fchmod(self._fd, PRIVATE_FILE)
        if created:
            fsync_directory(self.directory)     # its name is durable before any record in it
        size = os.fstat(self._fd).st_size
        records, whole = spool_records.scan(self._read, size)
        if whole < size:
            log.warning("the spool's journal ends in %d bytes that are not a whole record (a power cut while "
                        "a result was written, before it was synced); cut back to %d bytes", size - whole, whole)
            os.ftruncate(self._fd, whole)
        self._end = whole
        self._held = spool_records.live(records)

    def _read(self, offset, count):
        return os.pread(self._fd, count, offset)

    def _append(self, kind, job_id, parts):
        """Write one record at the end; on a failure, cut back what was written of it."""
        buffers = [spool_records.header(kind, job_id, parts)] + [memoryview(part) for part in parts]
        start = offset = self._end
        try:
            while buffers:
                written = os.pwritev(self._fd, buffers, offset)
                offset += written
                while buffers and written >= len(buffers[0]):
                    written -= len(buffers[0])
                    buffers.pop(0)
                if buffers and written:
                    buffers[0] = buffers[0][written:]
        except OSError:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            raise
        self._end = offset
        return start

    # -- what the outbox asks ---------------------------------------------------------------
    def save(self, job_id, payload):
        """Keep a result, given as its payload: UTF-8 JSON (framing.encode_payload) or its
        parts, JSON and output bytes (framing.encode_blob_payload); durable on return."""
        parts = payload if isinstance(payload, tuple) else (payload,)
        start = self._append(RESULT, job_id, parts)
        try:
            os.fdatasync(self._fd)
        except OSError:
            self._end = start
            os.ftruncate(self._fd, start)
            raise
        header_bytes = spool_records.HEADER.size + len(job_id.encode("utf-8"))
        self._held.pop(job_id, None)
        self._held[job_id] = (start + header_bytes, sum(len(part) for part in parts))

    def remove(self, job_id):
        if self._held.pop(job_id, None) is None:
            return
        if not self._held and self._end > RESTART_BYTES:
            os.ftruncate(self._fd, 0)           # nothing held: start the journal again
            self._end = 0
            return
        try:
            self._append(ACK, job_id, ())
        except OSError as exc:
            # Not synced anyway: without it, the result is sent again after a restart and
            # acknowledged again, never stored twice.
            log.warning("the ack of %s could not be written to the spool (%s); it may be sent again", job_id, exc)
        if self._end > self.compact_bytes and 2 * sum(length for _, length in self._held.values()) < self._end:
            try:
                self._compact()
            except OSError as exc:      # a full disk: the journal as it is holds everything still
                log.warning("the spool's journal could not be compacted (%s); kept as it is", exc)

    def holds(self, job_id):
        return job_id in self._held

    def count(self):
        return len(self._held)

    def pending(self):
        """Every result not yet acknowledged, oldest first. One that is not a result (not
        JSON, not a result message: a bug, or a file of an older release) is set aside to
        NAME.json.bad with one log line: sent, it would cost the link on every reconnect."""
        results = []
        for job_id, (offset, length) in list(self._held.items()):
            data = self._read(offset, length)
            try:
                results.append(_checked(framing.decode_payload(data)))
            except (ValueError, framing.FrameError) as exc:
                self._set_aside(job_id, data, exc)
                self.remove(job_id)
        results.sort(key=lambda r: r.get("endTime") or 0)
        return results

    def _set_aside(self, job_id, data, why):
        name = file_name(job_id) + ".bad"
        log.error("spooled result %s is not a usable result (%s); moved aside to %s", job_id, why, name)
        with open(os.path.join(self.directory, name), "wb") as handle:
            handle.write(data)

    # -- upkeep -------------------------------------------------------------------------
    def _compact(self):
        """Copy the results still held into a new journal and put it in place durably."""
        new_path = self.path + ".new"
        new_fd = os.open(new_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            os.fchmod(new_fd, PRIVATE_FILE)
            held, offset = {}, 0
            for job_id, (payload_at, length) in self._held.items():
                record_at = payload_at - spool_records.HEADER.size - len(job_id.encode("utf-8"))
                size = payload_at + length - record_at
                copied = 0
                while copied < size:
                    chunk = self._read(record_at + copied, min(COPY_CHUNK, size - copied))
                    copied += os.pwrite(new_fd, chunk, offset + copied)
                held[job_id] = (offset + payload_at - record_at, length)
                offset += size
            os.fsync(new_fd)
        except BaseException:
            os.close(new_fd)
            os.unlink(new_path)
            raise
        os.replace(new_path, self.path)
        fsync_directory(self.directory)
        os.close(self._fd)
        self._fd, self._end, self._held = new_fd, offset, held
        log.info("spool journal compacted to %d bytes (%d results held)", offset, len(held))

    def _take_older_files(self):
        """An older release's spool, a file per result: into the journal, then removed."""
        names = sorted(n for n in os.listdir(self.directory) if n.endswith(".json"))
        if not names:
            return
        for name in names:
            path = os.path.join(self.directory, name)
            with open(path, "rb") as handle:
                data = handle.read()
            try:
                result = _checked(framing.decode_payload(data))
            except (ValueError, framing.FrameError) as exc:
                log.error("spooled result %s is not a usable result (%s); moved aside to %s.bad",
                          job_id_of(name), exc, name)
                os.replace(path, path + ".bad")
                continue
            self._append(RESULT, result["job"], (data,))
        os.fdatasync(self._fd)
        self._held = spool_records.live(spool_records.scan(self._read, self._end)[0])
        for name in names:
            try:
                os.unlink(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def unacknowledged(directory):
    """The job ids a spool directory's journal holds, read from outside the worker (a
    test, an admin): no file is changed."""
    try:
        with open(os.path.join(directory, JOURNAL), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    records, _ = spool_records.scan(lambda offset, count: data[offset:offset + count], len(data))
    return list(spool_records.live(records))


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
