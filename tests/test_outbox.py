"""A result too large for one frame is cut at the source and flagged, never refused forever."""

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
