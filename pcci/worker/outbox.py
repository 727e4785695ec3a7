"""Finished jobs' results on their way to the master: spooled first, then sent.

The runner hands every result here; the master link attaches its live link while it
has one. A result is on disk before it is sent, and stays there until the master's
ack, so it survives a dropped link and a restart of either side.
"""


class Outbox:
    def __init__(self, spool):
        self.spool = spool
        self.link = None        # the live link to the master, while there is one

    def deliver(self, result):
        self.spool.save(result)
        if self.link is not None:
            self.link.send(result)

    def attach(self, link):
        """A new link: everything not yet acknowledged goes out first, oldest first."""
        self.link = link
        for result in self.spool.pending():
            link.send(result)

    def detach(self):
        self.link = None

    def acknowledged(self, job_id):
        self.spool.remove(job_id)

    def holds(self, job_id):
        return self.spool.holds(job_id)

    def unacknowledged(self):
        return self.spool.count()
