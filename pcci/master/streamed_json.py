"""A pool's JSON answer with its large outputs streamed: a job's ``SpilledText`` is read
and written in pieces, never joined into one string or one body (pure but for the
spilled texts' reads).

The answer's bytes are those ``to_json_bytes`` gives for the same pool with its outputs
as str: JSON escapes each character alone, so escaping a text piece by piece is
escaping it whole. An answer too large for the shared renderings (``pool_renders``) is streamed to
each reader from the file, in pieces of ``PIECE_BYTES``: an idle reader holds one.
"""

import json
import re
import uuid

from ..spilled_text import SpilledText
from .api_edge import to_json_bytes

OUTPUTS = ("stdout", "stderr")
# A streamed answer's text is read and escaped this many bytes at a time.
PIECE_BYTES = 64 * 1024


def spilled_bytes(pool):
    """The bytes of the pool's jobs' outputs held in files (0: none is)."""
    return sum(text.size for job in pool.jobs.values() for text in (job.stdout, job.stderr)
               if type(text) is SpilledText)


def pool_parts(data):
    """``to_json_bytes(data)`` (``views.pool_json``'s) as an iterator of bytes, its jobs'
    SpilledTexts written in pieces."""
    token = uuid.uuid4().hex        # a place holder no output can forge
    texts = []
    for job in (data.get("jobs") or {}).values():
        for name in OUTPUTS:
            if type(job.get(name)) is SpilledText:
                texts.append(job[name])
                job[name] = "%s-%d" % (token, len(texts) - 1)
    return _parts(to_json_bytes(data), re.compile(b'"%s-([0-9]+)"' % token.encode("ascii")), texts)


def _parts(body, holder, texts):
    at = 0
    for found in holder.finditer(body):
        yield body[at:found.start()] + b'"'
        for piece in texts[int(found.group(1))].text_pieces(PIECE_BYTES):
            yield json.dumps(piece, ensure_ascii=False)[1:-1].encode("utf-8", "backslashreplace")
        yield b'"'
        at = found.end()
    yield body[at:]


def amend_end(parts, amend):
    """The parts, the last one given to ``amend`` (bytes -> bytes) first."""
    last = None
    for part in parts:
        if last is not None:
            yield last
        last = part
    if last is not None:
        yield amend(last)
