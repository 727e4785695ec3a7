"""`pcci copy`'s transfer: how a local file reaches the master.

A small file travels inside POST /copy (base64, one frame to each worker; every worker
release takes it). A larger one is uploaded first, streamed from the disk, to
PUT /files/SHA256 -- resumed from where the master's copy ends if an earlier attempt
broke off -- and the copy names it by its sha256; the master then sends it to each
worker in chunks. Memory stays bounded by a piece of the file, whatever its size.
"""

import hashlib

from ..client.transport import PcciError

# Up to this size a file goes inside POST /copy: it fits the master's default max_body_bytes
# and max_frame_bytes with room to spare, and needs one round trip.
INLINE_BYTES = 256 * 1024
PIECE_BYTES = 1024 * 1024
UPLOAD_ATTEMPTS = 5
UPLOAD_SECONDS = 600


def file_sha256(handle):
    """(size, sha256) of an open file, read in pieces from its start."""
    digest, size = hashlib.sha256(), 0
    handle.seek(0)
    for piece in iter(lambda: handle.read(PIECE_BYTES), b""):
        digest.update(piece)
        size += len(piece)
    return size, digest.hexdigest()


def held_by_master(client, sha256):
    """(bytes the master holds of this file, complete)."""
    try:
        answer = client.call("GET", "/files/%s" % sha256)
    except PcciError as exc:
        if exc.status == 404:
            return 0, False
        raise
    return answer["received"], answer["complete"]


def upload(client, handle, size, sha256, attempts=UPLOAD_ATTEMPTS):
    """Make sure the master holds the whole file: send what it lacks, going on after a
    broken-off attempt from where its copy ends. The number of bytes sent."""
    sent = 0
    for attempt in range(attempts):
        held, complete = held_by_master(client, sha256)
        if complete:
            return sent
        handle.seek(held)
        try:
            client.put_stream("/files/%s?size=%d&offset=%d" % (sha256, size, held), handle, size - held,
                              timeout=UPLOAD_SECONDS)
            sent += size - held
        except PcciError as exc:
            # A cut-off body (no status: the connection broke; 400/408: the master saw it end
            # early) or a race with another upload (409) is tried again from where it stopped.
            if exc.status not in (None, 400, 408, 409) or exc.code in ("sha256_mismatch",) or attempt == attempts - 1:
                raise
    held, complete = held_by_master(client, sha256)
    if not complete:
        raise PcciError("the master holds %d of the file's %d bytes after %d attempts" % (held, size, attempts))
    return sent


def tree_body(client, directory, dest):
    """The POST /copy fields for a directory (`pcci copy -r`): a tar stream of it, written to
    a temporary file (the upload needs its size and sha256 first), uploaded, named by its
    sha256 with ``unpack: tar``. Modes are kept; links are sent as links."""
    import tarfile
    import tempfile
    with tempfile.TemporaryFile(prefix="pcci-copy-") as handle:
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(directory, arcname=".", recursive=True)
        size, sha256 = file_sha256(handle)
        upload(client, handle, size, sha256)
    return {"dest": dest, "sha256": sha256, "unpack": "tar"}


def copy_body(client, handle, dest):
    """The POST /copy fields that carry the file: ``content``, or ``sha256`` once uploaded."""
    import base64
    size, sha256 = file_sha256(handle)
    if size <= INLINE_BYTES:
        handle.seek(0)
        return {"dest": dest, "content": base64.b64encode(handle.read()).decode("ascii")}
    upload(client, handle, size, sha256)
    return {"dest": dest, "sha256": sha256}


def fetched_sha256(job):
    """The sha256 a fetch job's worker read, from its stdout ("sent N bytes (sha256 HEX) from PATH")."""
    text = job.get("stdout") or ""
    marker = "(sha256 "
    start = text.find(marker)
    return text[start + len(marker):start + len(marker) + 64] if start >= 0 else None


def download(client, pool_id, node, job, target):
    """Write a node's fetched file at ``target`` (beside it first, then renamed), checking its
    sha256 against the worker's; None, or what went wrong."""
    import os
    import tempfile
    expected = fetched_sha256(job)
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".pcci-fetch-", dir=directory)
    digest = hashlib.sha256()
    try:
        with os.fdopen(descriptor, "wb") as handle:
            with client.get_stream("/pool/%s/files/%s" % (pool_id, quote(node)), timeout=UPLOAD_SECONDS) as answer:
                for piece in iter(lambda: answer.read(PIECE_BYTES), b""):
                    digest.update(piece)
                    handle.write(piece)
        if expected is not None and digest.hexdigest() != expected:
            raise PcciError("the bytes downloaded have sha256 %s, not %s as the worker read them"
                            % (digest.hexdigest(), expected))
        os.rename(temporary, target)
        temporary = None
    except (PcciError, OSError) as exc:
        return str(exc)
    finally:
        if temporary is not None:
            os.unlink(temporary)
    return None


def quote(text):
    from urllib.parse import quote as url_quote
    return url_quote(text, safe="")


def fetch_into(client, pool, path, dest_dir, err):
    """Each succeeded node's file to DEST_DIR/NODE/BASENAME (rpdcp, clush --rcopy); how many failed."""
    import os
    failed = 0
    for node, job in sorted(pool["jobs"].items()):
        if job["state"] != "succeeded":
            continue
        if node in (".", "..") or "/" in node:
            print("pcci: %s: a node name that is not a plain file name; not written" % node, file=err)
            failed += 1
            continue
        problem = download(client, pool["id"], node, job, os.path.join(dest_dir, node, os.path.basename(path)))
        if problem is not None:
            print("pcci: %s: %s" % (node, problem), file=err)
            failed += 1
    return failed
