"""The spool's journal format: records appended one after the other (pure: no files).

    +-------+------+-------------+----------------+----------+---------+-----------+
    | "PS"  | kind | id length   | payload length | CRC-32   | job id  | payload   |
    | 2 B   | 1 B  | 2 B, big-e. | 8 B, big-end.  | 4 B      | UTF-8   | bytes     |
    +-------+------+-------------+----------------+----------+---------+-----------+

``kind`` is ``R`` (a result: the payload is the result frame's, framing.encode_payload
or encode_blob_payload) or ``A`` (the master acknowledged the job: no payload). The
CRC-32 covers the job id and the payload. A result is the last record of its job id
that is an ``R``, unless an ``A`` follows it.

A record cut short or damaged (a power cut while it was written: its write was never
fsync'd, so its save never returned) ends the journal: ``scan`` stops there and says
where, and the spool cuts the file back to that point.
"""

import binascii
import struct

MAGIC = b"PS"
RESULT = b"R"
ACK = b"A"
HEADER = struct.Struct(">2scHQI")
MAX_JOB_ID_BYTES = 65535
CHECK_CHUNK = 1 << 20       # the CRC of a large payload is computed this many bytes at a time


def header(kind, job_id, parts):
    """The header and job id bytes of a record whose payload is ``parts`` (bytes-likes)."""
    name = job_id.encode("utf-8")
    if len(name) > MAX_JOB_ID_BYTES:
        raise ValueError("job id of %d bytes is longer than a spool record takes" % len(name))
    crc = binascii.crc32(name)
    length = 0
    for part in parts:
        crc = binascii.crc32(part, crc)
        length += len(part)
    return HEADER.pack(MAGIC, kind, len(name), length, crc) + name


def scan(read, size):
    """Every whole record of a journal of ``size`` bytes, read with ``read(offset, count)``:
    a list of (kind, job id, payload offset, payload length), and the offset where the
    whole records end (``size`` unless its tail is torn or damaged)."""
    records, offset = [], 0
    while offset < size:
        record = _record_at(read, offset, size)
        if record is None:
            break
        records.append(record[0])
        offset = record[1]
    return records, offset


def _record_at(read, offset, size):
    if size - offset < HEADER.size:
        return None
    magic, kind, name_length, payload_length, crc = HEADER.unpack(read(offset, HEADER.size))
    payload_at = offset + HEADER.size + name_length
    end = payload_at + payload_length
    if magic != MAGIC or kind not in (RESULT, ACK) or end > size:
        return None
    name = read(offset + HEADER.size, name_length)
    seen = binascii.crc32(name)
    at = payload_at
    while at < end:
        chunk = read(at, min(CHECK_CHUNK, end - at))
        if not chunk:
            return None
        seen = binascii.crc32(chunk, seen)
        at += len(chunk)
    if seen != crc:
        return None
    try:
        job_id = name.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return (kind, job_id, payload_at, payload_length), end


def live(records):
    """{job id: (payload offset, payload length)} of the results not acknowledged, in the
    order they were saved."""
    held = {}
    for kind, job_id, payload_at, payload_length in records:
        held.pop(job_id, None)
        if kind == RESULT:
            held[job_id] = (payload_at, payload_length)
    return held
