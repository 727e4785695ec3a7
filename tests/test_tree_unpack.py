"""A directory sent as a tar stream (`pcci copy -r`) unpacked beneath its destination on a
real filesystem: modes kept, links within kept, and every way out refused before anything
is written (absolute names, .., links pointing outside, hard links, devices, an existing
link on the way)."""

import io
import os
import stat
import tarfile

import pytest

from pcci.worker.file_copy import CopyRefused
from pcci.worker.tree_unpack import link_stays_inside, unpack


def tar_of(*members):
    """A tar stream in a file: members are (name, kind, data-or-link, mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, mode in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.type = kind
            if kind == tarfile.SYMTYPE or kind == tarfile.LNKTYPE:
                info.linkname = payload
                tar.addfile(info)
            elif kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def unpacked(tmp_path, data, dest):
    path = tmp_path / "stream.tar"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        return unpack(fd, str(dest))
    finally:
        os.close(fd)


def test_a_tree_is_unpacked_with_its_modes_and_links_within_it(tmp_path):
    data = tar_of(("./", tarfile.DIRTYPE, None, 0o750), ("./bin", tarfile.DIRTYPE, None, 0o555),
                  ("./bin/tool", tarfile.REGTYPE, b"#!/bin/sh\necho hi\n", 0o755),
                  ("./etc/app.conf", tarfile.REGTYPE, b"x = 1\n", 0o600),
                  ("./etc/current", tarfile.SYMTYPE, "app.conf", 0o777),
                  ("./etc/tool", tarfile.SYMTYPE, "../bin/tool", 0o777))
    dest = tmp_path / "app"
    assert unpacked(tmp_path, data, dest) == (2, 1, 2, len(b"#!/bin/sh\necho hi\n") + len(b"x = 1\n"))
    assert (dest / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE((dest / "bin" / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "etc" / "app.conf").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "bin").stat().st_mode) == 0o555     # read-only, set after it was filled
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert os.readlink(dest / "etc" / "current") == "app.conf" and os.readlink(dest / "etc" / "tool") == "../bin/tool"
    os.chmod(dest / "bin", 0o755)


@pytest.mark.parametrize("member, says", [
    (("/etc/passwd", tarfile.REGTYPE, b"root::0:0::/:/bin/sh\n", 0o644), "not a plain relative path"),
    (("../escaped", tarfile.REGTYPE, b"x", 0o644), "not a plain relative path"),
    (("a/../../escaped", tarfile.REGTYPE, b"x", 0o644), "not a plain relative path"),
    (("link", tarfile.SYMTYPE, "/etc/shadow", 0o777), "outside the destination"),
    (("sub/link", tarfile.SYMTYPE, "../../outside", 0o777), "outside the destination"),
    (("self", tarfile.SYMTYPE, "x/../..", 0o777), "outside the destination"),
    (("hard", tarfile.LNKTYPE, "/etc/shadow", 0o644), "hard link"),
    (("dev", tarfile.CHRTYPE, None, 0o666), "device or FIFO"),
    (("fifo", tarfile.FIFOTYPE, None, 0o666), "device or FIFO"),
])
def test_a_tar_with_a_way_out_is_refused_before_anything_is_written(tmp_path, member, says):
    data = tar_of(("first.txt", tarfile.REGTYPE, b"written only if all is well", 0o644), member)
    dest = tmp_path / "dest"
    with pytest.raises(CopyRefused, match=says):
        unpacked(tmp_path, data, dest)
    assert os.listdir(dest) == [] and sorted(os.listdir(tmp_path)) == ["dest", "stream.tar"]


def test_a_link_already_in_the_destination_is_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "conf").symlink_to(outside)           # planted where the tree has a directory
    with pytest.raises(CopyRefused, match="without a symbolic link"):
        unpacked(tmp_path, tar_of(("conf/app.conf", tarfile.REGTYPE, b"x", 0o644)), dest)
    assert os.listdir(outside) == []
    # A link the tar itself makes, then a file "through" it: refused the same way.
    data = tar_of(("up", tarfile.SYMTYPE, ".", 0o777), ("up/f", tarfile.REGTYPE, b"x", 0o644))
    with pytest.raises(CopyRefused):
        unpacked(tmp_path, data, tmp_path / "other")


def test_a_destination_reached_through_a_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real")
    with pytest.raises(CopyRefused, match="symbolic link"):
        unpacked(tmp_path, tar_of(("f", tarfile.REGTYPE, b"x", 0o644)), tmp_path / "via" / "tree")
    assert os.listdir(tmp_path / "real") == []


@pytest.mark.parametrize("depth, target, inside", [
    (0, "file", True), (1, "../file", True), (0, "../file", False), (2, "../../a/b", True),
    (2, "a/../../..", False), (1, "a/..", False), (0, "/abs", False), (0, "", False),
])
def test_which_link_targets_stay_inside(depth, target, inside):
    assert link_stays_inside(depth, target) is inside
