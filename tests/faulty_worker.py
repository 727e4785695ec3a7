"""A real worker process whose runner has seams that raise on cue, standing in for bugs
nobody foresaw (run as ``python -m faulty_worker worker --config PATH``):

* a command containing ``inject-spawn-fault``: starting its process raises;
* output containing ``inject-read-fault``: reading it raises;
* a copy whose destination contains ``inject-copy-fault``: writing it raises.

Everything else is the real worker (pcci.worker.service.run), wired with these seams.
"""

import argparse
import functools
import sys


from pcci import config, logs
from pcci.worker import file_copy, job_process, service
from pcci.worker.runner import Runner


def spawn(argv, environment, cwd, umask=-1, **options):
    if "inject-spawn-fault" in argv[-1]:
        raise RuntimeError("injected spawn fault")
    return job_process.spawn(argv, environment, cwd, umask, **options)


def read_output(capture, fd):
    keep = capture.keep

    def keep_or_fail(data):
        if b"inject-read-fault" in data:
            raise RuntimeError("injected read fault")
        keep(data)
    capture.keep = keep_or_fail         # this capture only: the real reader, a faulty sink
    job_process.Capture.read_to_eof(capture, fd)


def write_file(dest, data, mode=None, owner=None):
    if "inject-copy-fault" in dest:
        raise RuntimeError("injected copy fault")
    return file_copy.write(dest, data, mode, owner)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["worker"])
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    cfg = config.load(args.config, "worker")
    logs.setup(cfg.log_level)
    return service.run(cfg, make_runner=functools.partial(Runner, spawn=spawn, read_output=read_output,
                                                          write_file=write_file))


if __name__ == "__main__":
    sys.exit(main())
