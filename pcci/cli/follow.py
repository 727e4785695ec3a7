"""`pcci run --stream` and `pcci pool ID --follow`: a pool's output as it is produced,
each line prefixed with its node, stdout to stdout and stderr to stderr, as pdsh does.
The lines come whole from pcci.client.events (resumed, never twice); this prints them."""

from ..client.events import LineSplitter, follow_lines


class LinePrinter:
    """Prints output events as whole lines prefixed with the node."""

    def __init__(self, out, err, prefix=True):
        self.files = {"stdout": out, "stderr": err}
        self.prefix = prefix        # False: the lines alone (-N)
        self.splitter = LineSplitter()

    def output(self, worker, stream, offset, text):
        self.print_lines(self.splitter.output(worker, stream, offset, text))

    def job_ended(self, worker):
        self.print_lines(self.splitter.job_ended(worker))

    def print_lines(self, lines):
        for line in lines:
            handle = self.files[line.stream]
            handle.write("%s: %s\n" % (line.node, line.text) if self.prefix else line.text + "\n")
            handle.flush()


def follow(client, pool_id, out, err, prefix=True):
    """Print the pool's output until it is done; returns the ``done`` event's data."""
    printer = LinePrinter(out, err, prefix)
    done = {}
    printer.print_lines(follow_lines(lambda last_id: client.events(pool_id, last_id), pool_id, done.update))
    return done
