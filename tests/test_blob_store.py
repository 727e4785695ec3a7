"""Files uploaded for copies: the master's spool (blob_store) and PUT/GET /files through a
real master in this process -- limits checked before a byte is stored, an upload cut off
and resumed from the master's offset, a wrong sha256 dropped."""

import hashlib
import io
import os

import pytest

from pcci.errors import DigestMismatch, LengthRequired, PayloadTooLarge, UploadConflict
from pcci.master.blob_store import BlobStore, upload_problem


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size, offset, length, held, error", [
    (10, 0, None, 0, LengthRequired),
    (101, 0, 101, 0, PayloadTooLarge),          # over max_bytes 100, before any byte
    (10, 0, 10, 4, UploadConflict),             # the master holds 4: send from 4
    (10, 4, 7, 4, PayloadTooLarge),             # past the announced size
])
def test_an_upload_that_cannot_be_taken_is_refused_before_a_byte_is_stored(size, offset, length, held, error):
    assert isinstance(upload_problem(size, offset, length, held, 100), error)
    assert upload_problem(10, 4, 6, 4, 100) is None


def test_an_upload_cut_off_goes_on_from_where_the_master_holds_it(tmp_path):
    blobs = BlobStore(str(tmp_path / "files"), 1024 * 1024)
    data = os.urandom(300 * 1024)
    digest = sha(data)
    body = io.BytesIO(data[:100 * 1024])        # the body breaks off after 100 KiB of 300
    assert blobs.receive(digest, len(data), 0, len(data), body.read) == (100 * 1024, False)
    assert blobs.status(digest) == (100 * 1024, False)
    with pytest.raises(UploadConflict, match="send from offset 102400"):
        blobs.receive(digest, len(data), 0, len(data), io.BytesIO(data).read)
    rest = io.BytesIO(data[100 * 1024:])
    assert blobs.receive(digest, len(data), 100 * 1024, len(data) - 100 * 1024, rest.read) == (len(data), True)
    assert blobs.status(digest) == (len(data), True) and blobs.size(digest) == len(data)
    with open(blobs.path(digest), "rb") as handle:
        assert handle.read() == data
    assert os.listdir(tmp_path / "files") == [digest]


def test_bytes_whose_sha256_is_not_the_named_one_are_dropped(tmp_path):
    blobs = BlobStore(str(tmp_path / "files"), 1024)
    with pytest.raises(DigestMismatch, match="not %s" % sha(b"right")):
        blobs.receive(sha(b"right"), 5, 0, 5, io.BytesIO(b"wrong").read)
    assert os.listdir(tmp_path / "files") == []


def test_files_past_retention_are_purged_unless_a_running_copy_reads_them(tmp_path):
    blobs = BlobStore(str(tmp_path / "files"), 1024)
    old, used, fresh = b"old", b"used", b"fresh"
    for data in (old, used, fresh):
        blobs.receive(sha(data), len(data), 0, len(data), io.BytesIO(data).read)
    for data in (old, used):
        os.utime(blobs.path(sha(data)), (1000, 1000))
    assert blobs.purge(older_than=2000, in_use={sha(used)}) == 1
    assert sorted(os.listdir(tmp_path / "files")) == sorted([sha(used), sha(fresh)])


def test_put_files_through_the_api_limits_resumes_and_feeds_post_copy(in_process):
    master = in_process(max_copy_bytes=64 * 1024)
    data = os.urandom(40 * 1024)
    digest = sha(data)
    status, answer = master.api("GET", "/files/%s" % digest)
    assert status == 404 and answer["error"]["code"] == "unknown_file"
    status, answer = master.api("PUT", "/files/%s?size=%d" % (digest, 65 * 1024), raw=data)
    assert status == 413 and "max_copy_bytes" in answer["error"]["message"]
    status, answer = master.api("PUT", "/files/%s?size=%d&offset=5" % (digest, len(data)), raw=data[5:])
    assert status == 409 and answer["error"]["code"] == "upload_conflict"
    status, answer = master.api("PUT", "/files/%s?size=%d" % (digest, len(data)), raw=data[:1000])
    assert status == 200 and answer == {"sha256": digest, "bytes": len(data), "received": 1000, "complete": False}
    status, answer = master.api("PUT", "/files/%s?size=%d&offset=1000" % (digest, len(data)), raw=data[1000:])
    assert status == 201 and answer["complete"] and answer["received"] == len(data)
    assert master.api("GET", "/files/%s" % digest)[1]["complete"]
    status, answer = master.api("PUT", "/files/NOTHEX?size=1", raw=b"x")
    assert status == 400 and answer["error"]["code"] == "wrong_type"
    status, answer = master.api("POST", "/copy", {"workers": ["nobody"], "dest": "/tmp/x", "sha256": sha(b"none")})
    assert status == 404 and answer["error"]["code"] == "unknown_file"
    status, answer = master.api("POST", "/copy", {"workers": ["pi1"], "dest": "/tmp/x", "sha256": digest,
                                                  "content": "eA=="})
    assert status == 400 and "without 'content'" in answer["error"]["message"]
