"""A pool's JSON answer with its large outputs streamed: a job's ``SpilledText`` is read
and written in pieces, never joined into one string or one body (pure but for the
spilled texts' reads).

The answer's bytes are those ``to_json_bytes`` gives for the same pool with its outputs
as str: JSON escapes each character alone, so escaping a text piece by piece is
escaping it whole. Such answers are not kept in the shared renderings (``pool_renders``):
each reader streams its own from the file.
"""

import json
import re
import uuid

from ..spilled_text import SpilledText
from .api_edge import to_json_bytes

OUTPUTS = ("stdout", "stderr")


def has_spilled(pool, live):
    """Whether one of the pool's jobs has an output held in a file; ``live`` maps a running
    job's worker to its (stdout, stderr) so far (``PoolFeeds.live_output``)."""
    return (any(type(job.stdout) is SpilledText or type(job.stderr) is SpilledText for job in pool.jobs.values())
            or any(type(text) is SpilledText for texts in live.values() for text in texts))


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
        for piece in texts[int(found.group(1))].text_pieces():
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
