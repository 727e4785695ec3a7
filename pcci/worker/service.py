"""The worker process: load config, build runner, spool and link, run until SIGTERM."""

import logging
import os
import signal

import gevent
from gevent.event import Event

from .. import config as config_module
from .. import secret_files, service_manager, tls
from ..open_files import raise_open_file_limit
from ..clock import monotonic
from ..errors import CannotStart, ConfigError
from . import cgroups, orphans
from .copy_streams import CopyStreams
from .fetch_streams import FetchStreams
from .job_user import JobUsers
from .live_output import LiveChannel
from .master_link import MasterLink
from .outbox import Outbox
from .relay_server import RelayServer
from .relay_sources import RelaySources
from .runner import Runner
from .spool import Spool

log = logging.getLogger(__name__)

# The hub's repr of a failed greenlet's context: gevent's default, pprint.saferepr, costs
# an idle worker 1.1 MB (pprint imports dataclasses, inspect, dis and ast); reprlib is
# loaded already and bounds the text as well. Set before the hub exists.
gevent.config.format_context = "reprlib.repr"

# How long a stopping worker waits for the master to acknowledge the last results.
FINAL_ACK_SECONDS = 3.0


def missing_setup(cfg):
    """Why this worker cannot join a cluster yet (no master address, no key file), or None."""
    if not cfg.master_host and not cfg.master_hosts:
        return "master_host is not set"
    if not cfg.cluster_key and cfg.cluster_key_file and not os.path.exists(cfg.cluster_key_file):
        return "the cluster key file %s does not exist (copy it from the master)" % cfg.cluster_key_file
    if not cfg.cluster_key and not cfg.cluster_key_file:
        return "no cluster key is set"
    return None


def run(cfg, make_runner=Runner):
    """Run the worker until SIGTERM; ``make_runner`` builds its Runner (a test passes one
    with broken seams)."""
    missing = missing_setup(cfg)
    if missing:
        # Exit cleanly rather than fail: a freshly installed, unconfigured worker must not
        # register with anything or crash-loop; it waits for its admin.
        log.warning("not configured yet: %s. Edit %s, then restart the worker "
                    "(systemctl restart pcci-worker)", missing, cfg.source)
        # Started, then done: systemd (Type=notify) must not take this for a failed start.
        service_manager.notify("READY=1\nSTATUS=not configured yet")
        return 0
    key = secret_files.read_cluster_key(cfg)
    if not cfg.master_tls:
        log.warning("master_tls is false: the link to the master is PLAINTEXT. Anyone on the network can read "
                    "every command and its output and make this worker run commands. Use this only to debug.")
    node = cfg.node_name or config_module.default_node_name()
    raise_open_file_limit()
    spool = Spool(os.path.join(cfg.state_dir, "results"))
    worker_id = os.path.abspath(cfg.state_dir)
    try:
        job_cgroups = cgroups.detect(cfg.job_cgroups)
    except RuntimeError as exc:
        raise CannotStart(str(exc))
    orphans.reap(worker_id, job_cgroups)
    outbox = Outbox(spool, cfg.max_frame_bytes)
    live_channel = LiveChannel()
    users = JobUsers(cfg.allowed_users, cfg.default_user)
    if (cfg.allowed_users or cfg.default_user) and os.geteuid() != 0:
        log.warning("allowed_users/default_user are set but this worker runs as %s, not root: jobs asking for "
                    "another user will fail (enable the root-jobs drop-in, docs/security.md)", users.running_as)
    runner = make_runner(cfg.shell, cfg.output_cap_bytes, cfg.kill_grace, outbox.deliver, worker_id,
                    cfg.max_jobs, job_cgroups, live_channel, users)
    relay_server = start_relay(cfg, node)
    copies = CopyStreams(outbox.deliver, node=node, relays=relay_server.sources if relay_server else None)
    link = MasterLink(cfg, key, node, runner, outbox, live_channel, copies, FetchStreams(outbox.deliver),
                      relay_server.endpoint() if relay_server else None)

    stopping = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stopping.set)
    gevent.signal_handler(signal.SIGHUP, lambda: gevent.spawn(reload_labels, cfg.source, link))
    masters = ", ".join("%s:%d" % master for master in link.config_masters())
    log.info("worker %s starting; %s %s", node, "masters are" if cfg.master_hosts else "master is", masters)
    dialer = gevent.spawn(link.run, stopping)
    watchdog = service_manager.ready("worker %s, master %s" % (node, masters))
    stopping.wait()
    service_manager.stopping()
    if watchdog is not None:
        watchdog.kill()

    log.info("stopping: killing %d running job(s), cancelling %d queued", len(runner.jobs), len(runner.queue))
    runner.kill_all(wait_seconds=cfg.kill_grace + 2)
    _wait_for_acks(outbox)
    dialer.kill()
    if relay_server is not None:
        relay_server.close()
    log.info("worker %s stopped", node)
    return 0


def start_relay(cfg, node):
    """The relay listener (``relay_listen``, said in the hello at ``relay_advertise`` if set),
    with this worker's own self-made certificate in its state directory; None when it is off
    (the default)."""
    if cfg.relay_listen is None:
        return None
    cert = os.path.join(cfg.state_dir, "relay-tls", "relay.crt")
    key = os.path.join(cfg.state_dir, "relay-tls", "relay.key")
    tls.ensure_certificate(cert, key, "pcci-relay-%s" % node)
    server = RelayServer(cfg.relay_listen, tls.server_context(cert, key), tls.file_fingerprint(cert),
                         RelaySources(), node, advertise=cfg.relay_advertise)
    try:
        return server.start()
    except OSError as exc:
        raise CannotStart("relay_listen %s:%d: cannot listen there: %s" % (cfg.relay_listen + (exc.strerror or exc,)))


def reload_labels(config_path, link):
    """SIGHUP (systemctl reload pcci-worker): the labels again; a file that does not
    validate changes nothing. Other settings take a restart."""
    try:
        new = config_module.load_and_let_go(config_path, "worker")
    except ConfigError as exc:
        log.error("reload: kept the labels in use; %s", "; ".join(exc.problems))
        return
    link.relabel(new.labels)


def _wait_for_acks(outbox, seconds=FINAL_ACK_SECONDS):
    """Give the master a moment to acknowledge results; what is left stays spooled."""
    deadline = monotonic() + seconds
    while outbox.unacknowledged() and outbox.link is not None and monotonic() < deadline:
        gevent.sleep(0.05)
