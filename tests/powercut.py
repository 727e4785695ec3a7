"""A FUSE filesystem that forgets what was not fsync'd when its "power" is cut, as LazyFS does.

    /usr/bin/python3 tests/powercut.py LIVE_DIR DURABLE_DIR MOUNTPOINT CONTROL_SOCKET

Everything is passed through to LIVE_DIR, so the processes on the mount see an
ordinary filesystem. Beside it the filesystem keeps what a disk would have kept:

* a file's data is durable once the file is fsync'd (or fdatasync'd): its changed byte
  ranges are copied to DURABLE_DIR/data/<inode>;
* a name -- a created file, a new directory, a rename's target, an unlink -- is durable
  once its directory is fsync'd: that directory's listing is recorded then.

A line "cut" on CONTROL_SOCKET (a Unix socket) cuts the power: LIVE_DIR is rebuilt from
the durable listings and data, so everything not fsync'd is gone -- data, creates,
renames and unlinks alike -- and the answer "ok" comes back. The caller SIGKILLs the
processes that use the mount first, as a power cut would. The state after a cut is
the new durable state. Kernel caching is off (attr/entry timeouts 0), so processes
started after a cut see the rebuilt tree.

A test harness, not part of PCCI; it needs root, /dev/fuse and Debian's python3-fusepy.
"""

import errno
import os
import shutil
import stat
import sys
import threading

from fusepy import FUSE, FuseOSError, Operations

import control


class PowerCutFS(Operations):
    def __init__(self, live, durable):
        self.live = os.path.realpath(live)
        self.durable = os.path.realpath(durable)
        self.mutex = threading.RLock()   # one operation at a time, and none during a cut
        self.dirty = {}         # inode -> list of (start, end) written since its last fsync
        self.listings = {}      # directory (relative, "" for the root) -> {name: ["file", inode] | ["dir"]}
        self.cuts = 0
        self.snapshot_everything()

    # -- the durable state -------------------------------------------------------------
    def _data(self, inode):
        return os.path.join(self.durable, "data", str(inode))

    def snapshot_everything(self):
        """Take the live tree as it is as durable (at mount, and after a cut)."""
        shutil.rmtree(os.path.join(self.durable, "data"), ignore_errors=True)
        os.makedirs(os.path.join(self.durable, "data"))
        self.dirty.clear()
        self.listings.clear()
        for directory, subdirs, files in os.walk(self.live):
            relative = os.path.relpath(directory, self.live)
            relative = "" if relative == "." else relative
            self.listings[relative] = self._listing(directory)
            for name in files:
                path = os.path.join(directory, name)
                shutil.copyfile(path, self._data(os.lstat(path).st_ino))

    def _listing(self, directory):
        listing = {}
        for name in os.listdir(directory):
            info = os.lstat(os.path.join(directory, name))
            listing[name] = ["dir"] if stat.S_ISDIR(info.st_mode) else ["file", info.st_ino]
        return listing

    def sync_file(self, full):
        info = os.lstat(full)
        data = self._data(info.st_ino)
        ranges = self.dirty.pop(info.st_ino, [])
        if not os.path.exists(data):
            shutil.copyfile(full, data)
            return
        with open(full, "rb") as source, open(data, "r+b") as target:
            for start, end in ranges:
                source.seek(start)
                target.seek(start)
                target.write(source.read(end - start))
            target.truncate(info.st_size)

    def sync_directory(self, relative, full):
        self.listings[relative] = self._listing(full)
        for name, entry in self.listings[relative].items():
            if entry[0] == "dir":
                self.listings.setdefault(os.path.join(relative, name), {})
            elif not os.path.exists(self._data(entry[1])):
                open(self._data(entry[1]), "wb").close()     # a name whose data was never synced: empty

    def cut(self):
        """Power cut: the live tree becomes what the durable state says."""
        with self.mutex:
            staging = self.live + ".rebuild"
            shutil.rmtree(staging, ignore_errors=True)
            self._rebuild("", staging)
            for name in os.listdir(self.live):
                path = os.path.join(self.live, name)
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
            for name in os.listdir(staging):
                os.rename(os.path.join(staging, name), os.path.join(self.live, name))
            os.rmdir(staging)
            self.snapshot_everything()
            self.cuts += 1

    def _rebuild(self, relative, target):
        os.makedirs(target, exist_ok=True)
        for name, entry in self.listings.get(relative, {}).items():
            path = os.path.join(target, name)
            if entry[0] == "dir":
                self._rebuild(os.path.join(relative, name), path)
            elif os.path.exists(self._data(entry[1])):
                shutil.copyfile(self._data(entry[1]), path)
            else:
                open(path, "wb").close()

    # -- passthrough --------------------------------------------------------------------
    def _full(self, path):
        return os.path.join(self.live, path.lstrip("/"))

    def __call__(self, operation, path, *args):
        with self.mutex:
            try:
                return super().__call__(operation, path, *args)
            except OSError as exc:
                raise FuseOSError(exc.errno or errno.EIO)

    def access(self, path, mode):
        if not os.access(self._full(path), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        return os.chmod(self._full(path), mode)

    def chown(self, path, uid, gid):
        return os.chown(self._full(path), uid, gid)

    def create(self, path, mode, fi=None):
        return os.open(self._full(path), os.O_RDWR | os.O_CREAT, mode)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        self.sync_file(self._full(path))
        return 0

    def fsyncdir(self, path, datasync, fh):
        self.sync_directory(path.strip("/"), self._full(path))
        return 0

    def getattr(self, path, fh=None):
        info = os.lstat(self._full(path))
        return {key: getattr(info, key) for key in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime",
                                                    "st_nlink", "st_size", "st_uid")}

    def mkdir(self, path, mode):
        return os.mkdir(self._full(path), mode)

    def open(self, path, flags):
        return os.open(self._full(path), flags)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._full(path))

    def readlink(self, path):
        return os.readlink(self._full(path))

    def release(self, path, fh):
        return os.close(fh)

    def rename(self, old, new):
        return os.rename(self._full(old), self._full(new))

    def rmdir(self, path):
        return os.rmdir(self._full(path))

    def statfs(self, path):
        info = os.statvfs(self._full(path))
        return {key: getattr(info, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                    "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def symlink(self, target, source):
        return os.symlink(source, self._full(target))

    def truncate(self, path, length, fh=None):
        full = self._full(path)
        size = os.lstat(full).st_size
        with open(full, "r+b") as handle:
            handle.truncate(length)
        if length > size:
            self.dirty.setdefault(os.lstat(full).st_ino, []).append((size, length))

    def unlink(self, path):
        return os.unlink(self._full(path))

    def utimens(self, path, times=None):
        return os.utime(self._full(path), times)

    def write(self, path, data, offset, fh):
        written = os.pwrite(fh, data, offset)
        self.dirty.setdefault(os.fstat(fh).st_ino, []).append((offset, offset + written))
        return written


def answer(filesystem, words):
    """'cut' cuts the power, 'cuts' says how many so far."""
    if words == ["cut"]:
        filesystem.cut()
        return "ok"
    if words == ["cuts"]:
        return str(filesystem.cuts)
    return "error: unknown command"


def main(live, durable, mountpoint, control_path):
    filesystem = PowerCutFS(live, durable)
    threading.Thread(target=control.serve, args=(control_path, lambda words: answer(filesystem, words)),
                     daemon=True).start()
    FUSE(filesystem, mountpoint, foreground=True, nothreads=False, allow_other=True,
         attr_timeout=0, entry_timeout=0, negative_timeout=0)


if __name__ == "__main__":
    main(*sys.argv[1:5])
