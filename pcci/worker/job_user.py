"""Which user a job runs as, and the command line that becomes that user.

A worker runs its jobs as its own user unless it may switch: ``allowed_users`` names the
users a job may ask for (the worker's own user may always be asked for), and
``default_user`` the one a job that asks for none runs as. Switching needs the worker to
run as root (the Debian package's ``root-jobs.conf`` drop-in). The job then becomes its
user through util-linux's ``setpriv`` (uid, gid, the user's supplementary groups), after
the shell has moved itself into the job's cgroup as root: a process of another user
could not move itself there. HOME, USER, LOGNAME and SHELL are the user's; the umask is
022, as a login gives.
"""

import os
import pwd

SETPRIV = "setpriv"
JOB_UMASK = 0o022


class JobUserRefused(Exception):
    """The job may not run as the user it asked for; the message says why."""


def own_user():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def choose(asked, allowed_users, default_user, running_as):
    """The name of the user a job runs as (pure): the one it asked for, else the default,
    else the worker's own (``running_as``); JobUserRefused if that is not allowed."""
    user = asked or default_user or running_as
    if user != running_as and user not in allowed_users:
        raise JobUserRefused("user %r is not one this worker may run jobs as (allowed_users: %s)"
                             % (user, ", ".join([running_as] + list(allowed_users))))
    return user


def identity(user, running_as):
    """The passwd entry to switch to, or None when the job runs as the worker's own user."""
    if user == running_as:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise JobUserRefused("user %r does not exist on this node" % user)
    if os.geteuid() != 0:
        raise JobUserRefused("this worker runs as %s and cannot switch to %r; a worker that runs jobs as other "
                             "users runs as root (docs/security.md, 'Jobs as another user')" % (running_as, user))
    return entry


def environment(entry):
    """The variables a login of this user would have."""
    return {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name,
            "SHELL": entry.pw_shell or "/bin/sh"}


def argv(shell, cmd, entry, prefix=""):
    """The command line: ``prefix`` (shell code run first, as root: entering the cgroup),
    then setpriv to the user, then ``shell -c cmd``. The command is passed as an argument,
    never spliced into shell code."""
    switch = [SETPRIV, "--reuid=%d" % entry.pw_uid, "--regid=%d" % entry.pw_gid, "--init-groups", "--",
              shell, "-c", cmd]
    return [shell, "-c", prefix + 'exec "$@"', "pcci-job"] + switch


class JobUsers:
    """A worker's settings for job users: ``allowed_users`` and ``default_user``."""

    def __init__(self, allowed_users=(), default_user=None):
        self.allowed_users = list(allowed_users)
        self.default_user = default_user
        self.running_as = own_user()

    def entry_for(self, asked):
        """The passwd entry to switch to for a job asking for ``asked`` (None: stay);
        JobUserRefused if it may not."""
        return identity(choose(asked, self.allowed_users, self.default_user, self.running_as), self.running_as)

    def offered(self):
        """Every user a job may ask for here: told to the master at handshake."""
        return [self.running_as] + [user for user in self.allowed_users if user != self.running_as]
