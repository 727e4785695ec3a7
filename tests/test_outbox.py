"""A result too large for one frame is cut at the source and flagged, never refused forever."""

import resource
import signal

from pcci.framing import encode
from pcci.protocol import result_message
from pcci.worker.outbox import fit_to_frame


def result(stdout, stderr=""):
    return result_message("p/n", "succeeded", 0, None, 1, 2, stdout, stderr, False, False)


def test_a_result_that_fits_is_passed_through_untouched():
    small = result("hello\n")
    assert fit_to_frame(small, 16 * 1024 * 1024) is small


def test_control_bytes_that_would_overflow_the_frame_are_cut_and_flagged():
    # 3 MB of \x01 is 18 MB as JSON: observed before, over the 16 MiB limit on every reconnect.
    big = result("\x01" * (3 * 1024 * 1024), "err\n")
    fitted = fit_to_frame(big, 16 * 1024 * 1024)
    assert len(encode(fitted)) <= 16 * 1024 * 1024
    assert fitted["stdoutTruncated"] is True and fitted["stderrTruncated"] is False
    assert fitted["stderr"] == "err\n" and fitted["stdout"] == "\x01" * len(fitted["stdout"])
    assert len(fitted["stdout"]) >= 1024 * 1024


def linked_outbox(spool_directory):
    """An outbox on a real spool and a real link over a socketpair; the master's end."""
    import gevent.socket

    from pcci.link import Link
    from pcci.worker.outbox import Outbox
    from pcci.worker.spool import Spool
    worker_end, master_end = gevent.socket.socketpair()
    outbox = Outbox(Spool(str(spool_directory)), 16 * 1024 * 1024)
    outbox.attach(Link(worker_end, 16 * 1024 * 1024))
    return outbox, Link(master_end, 16 * 1024 * 1024)


def test_a_result_is_sent_and_stays_spooled_until_acknowledged(tmp_path):
    outbox, master = linked_outbox(tmp_path / "results")
    finished = result("hello\n")
    outbox.deliver(finished)
    assert master.receive(5) == finished
    assert outbox.holds("p/n") and outbox.spool.pending() == [finished]
    outbox.acknowledged("p/n")
    assert not outbox.holds("p/n") and outbox.spool.pending() == []


def test_a_result_the_disk_refuses_is_still_sent_and_kept_in_memory(tmp_path):
    outbox, master = linked_outbox(tmp_path / "results")
    finished = result("hello\n")
    # The disk takes no more: this process may not grow a file (EFBIG), so the save fails.
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    ignored = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, limits[1]))
    try:
        outbox.deliver(finished)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, ignored)
    assert master.receive(5) == finished
    assert outbox.holds("p/n") and outbox.in_memory == {"p/n": finished}
