"""PUT /files/SHA256 and GET /files/SHA256: files uploaded for copies (``blob_store``); and
GET /pool/ID/files/NODE: a file a worker sent back for POST /fetch (``fetch_sink``),
streamed from the master's disk.

An upload streams its body to disk in pieces, so its size is bounded by
``max_copy_bytes`` and the free disk, never by memory or ``max_body_bytes``. A cut-off
upload keeps what it brought: GET says how many bytes the master holds, and the next
PUT sends the rest from that ``offset``. docs/api.md describes both.
"""

import socket

from ..errors import ApiError, MalformedRequest, OutOfRange, RequestTimeout, UnknownFile, WrongType
from ..states import JobState
from .api_edge import Document, bottle
from .blob_store import SHA256


# A fetched file's bytes are the worker's, served from the dashboard's origin: a browser
# sent there saves them and never renders them (an HTML file's script would run as the
# dashboard and read its token).
# (X-Content-Type-Options: nosniff is on every answer: api_edge.)
FETCHED_FILE_HEADERS = {"Content-Disposition": "attachment", "Content-Security-Policy": "sandbox; default-src 'none'"}


def _file_json(sha256, size, held, complete):
    return {"sha256": sha256, "bytes": size, "received": held, "complete": complete}


def _whole_number(query, name, default=None):
    text = query.get(name)
    if text is None and default is not None:
        return default
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise OutOfRange("?%s= must be a whole number of bytes, got %r" % (name, (text or "")[:40]))
    return int(text)


def _checked_sha256(sha256):
    if not SHA256.fullmatch(sha256):
        raise WrongType("the path names a file by its sha256: 64 lowercase hex digits, got %r" % sha256[:80])
    return sha256


def _streamed(handle, size):
    """A fetched file's bytes, in pieces, for the WSGI server; closed at the end."""
    try:
        left = size
        while left:
            piece = handle.read(min(left, 256 * 1024))
            if not piece:
                break
            left -= len(piece)
            yield piece
    finally:
        handle.close()


def add_fetch_routes(app, pools, fetched):
    """GET /pool/ID/files/NODE: the file a node sent back for a POST /fetch pool."""
    @app.get("/pool/<pool_id>/files/<node>", scope="operate")
    def get_fetched(pool_id, node):
        pool = pools.get(pool_id)
        job = pool.jobs.get(node)
        if pool.copy is None or not pool.copy.fetch or job is None:
            raise UnknownFile("pool %s has no file fetched from %r (only a POST /fetch pool has)" % (pool_id, node[:100]))
        found = fetched.open(pool_id, node) if job.state is JobState.SUCCEEDED else None
        if found is None:
            raise UnknownFile("the master holds no file fetched from %s in pool %s (its job is %s; files are purged "
                              "after pool_retention)" % (node, pool_id, job.state.value))
        size, handle = found
        return 200, Document(_streamed(handle, size), "application/octet-stream",
                             dict(FETCHED_FILE_HEADERS, **{"Content-Length": str(size)}))


def add_file_routes(app, blobs):
    @app.put("/files/<sha256>", scope="operate")
    def put_file(sha256):
        request = bottle.request
        try:
            size = _whole_number(request.query, "size")
            offset = _whole_number(request.query, "offset", 0)
            length = request.content_length
            stream = request.environ["wsgi.input"]
            held, complete = blobs.receive(_checked_sha256(sha256), size, offset, length if length >= 0 else None,
                                           stream.read)
        except ApiError:
            bottle.response.set_header("Connection", "close")   # the body was not read: its bytes would follow
            raise
        except socket.timeout:
            bottle.response.set_header("Connection", "close")
            raise RequestTimeout("the upload stopped arriving; GET /files/%s says where to go on from" % sha256)
        except (OSError, ValueError) as exc:
            bottle.response.set_header("Connection", "close")
            raise MalformedRequest("the upload broke off (%s); GET /files/%s says where to go on from"
                                   % (exc, sha256))
        if held < offset + max(length, 0):
            bottle.response.set_header("Connection", "close")
            raise MalformedRequest("the body ended after %d of its %d bytes; the master keeps them: send the rest "
                                   "from offset %d" % (held - offset, length, held))
        return (201 if complete else 200), _file_json(sha256, size, held, complete)

    @app.get("/files/<sha256>", scope="operate")
    def get_file(sha256):
        held, complete = blobs.status(_checked_sha256(sha256))
        if not held and not complete:
            raise UnknownFile("the master holds no byte of a file with sha256 %s" % sha256)
        return 200, _file_json(sha256, held if complete else None, held, complete)
