"""A streamed copy's partial file on a real filesystem: resumed where it ends, never
through a link planted at its name, checked by sha256 before it replaces anything."""

import hashlib
import os
import stat

import pytest

from pcci.worker.file_copy import CopyRefused
from pcci.worker.partial_file import PartialFile, partial_name

JOB = "20261205-0000-pool/pi1"


def opened(dest, data, **fields):
    partial = PartialFile(JOB, str(dest), len(data), hashlib.sha256(data).hexdigest(), **fields)
    partial.open()
    return partial


def test_a_file_is_resumed_from_where_its_partial_file_ends(tmp_path):
    dest = tmp_path / "image.bin"
    data = os.urandom(3000)
    first = opened(dest, data)
    assert first.append(0, data[:1000]) and first.offset == 1000
    first.close()                                   # the link dropped; the worker goes on later
    second = opened(dest, data, mode=0o600)
    assert second.offset == 1000
    assert not second.append(0, data[:1000])        # a chunk sent again before the resume: ignored
    assert second.append(1000, data[1000:]) and second.complete
    assert second.finish().sha256 == hashlib.sha256(data).hexdigest()
    assert dest.read_bytes() == data and stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["image.bin"]


def test_bytes_that_are_not_the_announced_ones_replace_nothing(tmp_path):
    dest = tmp_path / "app.conf"
    dest.write_text("old\n")
    partial = PartialFile(JOB, str(dest), 4, hashlib.sha256(b"good").hexdigest())
    partial.open()
    partial.append(0, b"evil")
    with pytest.raises(CopyRefused, match="sha256"):
        partial.finish()
    assert dest.read_text() == "old\n" and os.listdir(tmp_path) == ["app.conf"]


def test_a_link_planted_at_the_partial_name_is_never_written_through(tmp_path):
    target = tmp_path / "shadow"
    target.write_text("secret\n")
    dest = tmp_path / "app.conf"
    name = partial_name("app.conf", JOB)
    os.symlink(target, tmp_path / name)
    with pytest.raises(CopyRefused):
        opened(dest, b"data")
    os.unlink(tmp_path / name)
    os.link(target, tmp_path / name)                 # a hard link: two names, one file
    with pytest.raises(CopyRefused, match="not this copy's own file"):
        opened(dest, b"data")
    assert target.read_text() == "secret\n"


def test_a_directory_reached_through_a_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real")
    with pytest.raises(CopyRefused, match="symbolic link"):
        opened(tmp_path / "via" / "f", b"x")
    assert os.listdir(tmp_path / "real") == []
