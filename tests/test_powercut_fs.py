"""The power-cut filesystem itself: it drops what was not fsync'd and keeps what was."""

import os

from pcci.durable_files import fsync_directory as sync_directory


def write(path, data, sync=False):
    with open(path, "wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_fsynced_data_and_names_survive_and_the_rest_is_lost(powercut):
    root = powercut.path
    write(os.path.join(root, "kept"), b"synced", sync=True)
    sync_directory(root)
    with open(os.path.join(root, "kept"), "ab") as handle:
        handle.write(b" and more, never synced")
    write(os.path.join(root, "unsynced-name"), b"data synced, directory not", sync=True)
    powercut.cut()
    assert sorted(os.listdir(root)) == ["kept"]
    assert read(os.path.join(root, "kept")) == b"synced"


def test_a_rename_needs_its_directory_fsynced(powercut):
    root = powercut.path
    write(os.path.join(root, "a.tmp"), b"first", sync=True)
    sync_directory(root)
    os.rename(os.path.join(root, "a.tmp"), os.path.join(root, "a"))
    powercut.cut()
    assert os.listdir(root) == ["a.tmp"]                         # the rename was not durable
    os.rename(os.path.join(root, "a.tmp"), os.path.join(root, "a"))
    sync_directory(root)
    powercut.cut()
    assert os.listdir(root) == ["a"] and read(os.path.join(root, "a")) == b"first"


def test_an_unlink_and_a_new_directory_need_their_parent_fsynced(powercut):
    root = powercut.path
    write(os.path.join(root, "doomed"), b"x", sync=True)
    sync_directory(root)
    os.unlink(os.path.join(root, "doomed"))
    os.mkdir(os.path.join(root, "sub"))
    powercut.cut()
    assert os.listdir(root) == ["doomed"]
    os.mkdir(os.path.join(root, "sub"))
    write(os.path.join(root, "sub", "f"), b"in sub", sync=True)
    sync_directory(os.path.join(root, "sub"))
    sync_directory(root)
    os.unlink(os.path.join(root, "doomed"))
    sync_directory(root)
    powercut.cut()
    assert os.listdir(root) == ["sub"] and read(os.path.join(root, "sub", "f")) == b"in sub"


def test_overwrites_within_a_file_are_kept_only_up_to_the_last_fsync(powercut):
    path = os.path.join(powercut.path, "f")
    write(path, b"0123456789", sync=True)
    sync_directory(powercut.path)
    with open(path, "r+b") as handle:
        handle.seek(2)
        handle.write(b"AB")
        handle.flush()
        os.fsync(handle.fileno())
        handle.seek(6)
        handle.write(b"XYZWVU")
    powercut.cut()
    assert read(path) == b"01AB456789"
