"""The result message of an ended job, from what the runner saw (pure)."""

import signal

from ..output_text import decode
from ..protocol import STREAMS, result_message
from ..states import JobState


def signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return "SIG%d" % number


def build_result(job_id, returncode, end_reason, start_time, end_time,
                 stdout, stderr, stdout_truncated, stderr_truncated):
    """The result message for an ended process. Its ``stdout`` and ``stderr`` stay the bytes
    the job wrote, not decoded: the outbox sends them as they are (``output_blobs``), so a
    large output is held once; ``as_text`` makes them text where text is needed."""
    if returncode < 0:
        exit_code, signal_text = 128 - returncode, signal_name(-returncode)
    else:
        exit_code, signal_text = returncode, None
    if end_reason is not None:
        state = end_reason
    else:
        state = JobState.SUCCEEDED if returncode == 0 else JobState.FAILED
    return result_message(job_id, state, exit_code, signal_text, start_time, end_time,
                          stdout, stderr, stdout_truncated, stderr_truncated)


def as_text(result):
    """The result with its output as text (decoded as the master decodes it: output_text),
    for a JSON frame or a test; a result whose output is text already comes back as it is."""
    if all(isinstance(result[name], str) for name in STREAMS):
        return result
    return dict(result, **{name: result[name] if isinstance(result[name], str) else decode(result[name])
                           for name in STREAMS})


def output_blobs(result):
    """(the result without its output, [(stream, bytes), ...]): for framing.encode_blob_payload."""
    header = {name: value for name, value in result.items() if name not in STREAMS}
    return header, [(name, result[name].encode("utf-8") if isinstance(result[name], str) else result[name])
                    for name in STREAMS]


def failed_to_start(job_id, exc, shell, cwd, when):
    """A job that never ran: failed, with no exit code (no process exited) and the reason
    on stderr. A missing working directory is not a missing command."""
    if cwd and isinstance(exc, (FileNotFoundError, NotADirectoryError)) and exc.filename == cwd:
        why = "the working directory %s does not exist" % cwd
    elif cwd and isinstance(exc, PermissionError) and exc.filename == cwd:
        why = "the working directory %s is not accessible to the worker's user" % cwd
    elif isinstance(exc, FileNotFoundError) and exc.filename in (shell, None):
        why = "the shell %s does not exist (the worker's 'shell' setting)" % shell
    else:
        why = str(exc)
    message = "pcci: the job could not start: %s\n" % why
    return result_message(job_id, JobState.FAILED, None, None, when, when, "", message, False, False)


def _bug(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def start_failed(job_id, exc, when):
    """A job the worker failed to start for a reason nobody foresaw (a bug): failed, never run."""
    return result_message(job_id, JobState.FAILED, None, None, when, when, "",
                          "pcci: the worker failed while starting this job (a bug; its log has the traceback): "
                          "%s; the job did not run\n" % _bug(exc), False, False)


def watch_failed(job_id, start_time, when, exc=None):
    """A job the worker could not watch (a bug): killed, and failed with the reason."""
    why = "" if exc is None else ": " + _bug(exc)
    return result_message(job_id, JobState.FAILED, None, None, start_time, when, "",
                          "pcci: the worker failed while running this job (a bug; its log has the traceback)%s; "
                          "the job was killed\n" % why, False, False)


def copied(job_id, dest, size, sha256, start, end):
    return result_message(job_id, JobState.SUCCEEDED, 0, None, start, end,
                          "wrote %d bytes (sha256 %s) to %s\n" % (size, sha256, dest), "", False, False)


def unpacked(job_id, dest, made, start, end):
    """A directory tree (`pcci copy -r`) unpacked beneath dest; ``made`` is partial_file.Unpacked."""
    return result_message(job_id, JobState.SUCCEEDED, 0, None, start, end,
                          "unpacked %d files, %d directories and %d links (%d bytes; tar sha256 %s) beneath %s\n"
                          % (made.files, made.directories, made.links, made.size, made.sha256, dest), "", False, False)


def copy_failed(job_id, exc, start, end):
    """A copy the worker failed to make for a reason nobody foresaw (a bug)."""
    return result_message(job_id, JobState.FAILED, None, None, start, end, "",
                          "pcci: the copy failed (a bug in the worker; its log has the traceback): %s\n" % _bug(exc),
                          False, False)


def copy_refused(job_id, reason, start, end):
    return result_message(job_id, JobState.FAILED, None, None, start, end, "", "pcci: copy refused: %s\n" % reason,
                          False, False)


def copy_killed(job_id, received, size, start, end):
    """A streamed copy killed before its last byte: its partial file is gone, nothing replaced."""
    return result_message(job_id, JobState.KILLED, None, None, start, end, "",
                          "pcci: the copy was killed after %d of its %d bytes; the destination was not "
                          "touched\n" % (received, size), False, False)


def cancelled(job_id, when):
    """A job killed while it waited for a free slot: it never ran."""
    return result_message(job_id, JobState.KILLED, None, None, None, when, "",
                          "pcci: killed while it waited for a free slot (max_jobs); it never ran\n", False, False)


def left_behind_note(count):
    """What the job's stderr says when processes of its group outlived it (no job cgroup)."""
    return ("pcci: %d process(es) of this job's process group were still running when it ended, without "
            "stdout or stderr; they were left running (with a job cgroup the worker waits for them)\n" % count)
