"""The worker's spool: results kept in one journal until acknowledged, across restarts,
torn writes and an older release's file-per-result spool."""

import json
import os

from pcci import framing
from pcci.protocol import result_message
from pcci.worker.outbox import result_payload
from pcci.worker.spool import Spool, file_name, unacknowledged


def result(job_id, stdout="", end=2):
    return result_message(job_id, "succeeded", 0, None, 1, end, stdout, "", False, False)


def saved(spool, job_id, stdout="", end=2, blobs=False):
    message = result(job_id, stdout, end)
    spool.save(job_id, result_payload(message, blobs))
    return message


def test_results_are_held_until_acknowledged_and_a_restart_sees_the_same(tmp_path):
    spool = Spool(str(tmp_path))
    first, second = saved(spool, "p/a", "one\n", end=5), saved(spool, "p/b", "two\n", end=3, blobs=True)
    assert spool.holds("p/a") and spool.holds("p/b") and spool.count() == 2
    assert spool.pending() == [second, first]                     # oldest first, by end time
    spool.remove("p/b")
    spool.close()
    again = Spool(str(tmp_path))
    assert again.pending() == [first] and not again.holds("p/b") and unacknowledged(str(tmp_path)) == ["p/a"]


def test_a_result_saved_again_is_held_once(tmp_path):
    spool = Spool(str(tmp_path))
    saved(spool, "p/a", "old\n")
    newer = saved(spool, "p/a", "new\n")
    spool.close()
    assert Spool(str(tmp_path)).pending() == [newer]


def test_once_all_are_acknowledged_a_journal_past_a_megabyte_takes_no_room(tmp_path):
    spool = Spool(str(tmp_path))
    for n in range(300):
        saved(spool, "p/%d" % n, "x" * 4000)
    for n in range(300):
        spool.remove("p/%d" % n)
    assert os.path.getsize(spool.path) == 0 and spool.count() == 0


def test_a_record_torn_by_a_power_cut_is_cut_off_and_the_whole_ones_are_kept(tmp_path):
    spool = Spool(str(tmp_path))
    kept = saved(spool, "p/a", "kept\n")
    saved(spool, "p/b", "torn\n")
    spool.close()
    whole = os.path.getsize(spool.path)
    with open(spool.path, "r+b") as handle:        # the second record was being written when power went
        handle.truncate(whole - 7)
    again = Spool(str(tmp_path))
    assert again.pending() == [kept] and not again.holds("p/b")
    later = saved(again, "p/c", "after\n", end=9)  # appended after the whole records, not after the torn bytes
    again.close()
    assert Spool(str(tmp_path)).pending() == [kept, later]


def test_a_damaged_record_ends_the_journal_there(tmp_path):
    spool = Spool(str(tmp_path))
    kept = saved(spool, "p/a", "kept\n")
    saved(spool, "p/b", "damaged\n")
    spool.close()
    with open(spool.path, "r+b") as handle:
        handle.seek(-3, os.SEEK_END)
        handle.write(b"XYZ")                       # the CRC no longer matches
    assert Spool(str(tmp_path)).pending() == [kept]


def test_an_older_releases_spool_files_are_taken_in_and_bad_ones_set_aside(tmp_path):
    older = result("p/old", "from before\n")
    (tmp_path / file_name("p/old")).write_bytes(framing.encode_payload(older))
    (tmp_path / file_name("p/bad")).write_text(json.dumps({"type": "result", "job": "p/bad", "state": "exploded"}))
    spool = Spool(str(tmp_path))
    assert spool.pending() == [older]
    assert sorted(os.listdir(str(tmp_path))) == ["journal", file_name("p/bad") + ".bad"]


def test_a_journal_mostly_acknowledged_is_compacted_to_what_is_held(tmp_path):
    spool = Spool(str(tmp_path), compact_bytes=64 * 1024)
    held = saved(spool, "p/held", "h" * 5000)
    for n in range(40):
        saved(spool, "p/%d" % n, "x" * 5000)
        spool.remove("p/%d" % n)
    assert os.path.getsize(spool.path) < 64 * 1024 and spool.pending() == [held]
    later = saved(spool, "p/later", "after\n", end=7)
    spool.close()
    assert Spool(str(tmp_path)).pending() == [held, later]
