"""The REST API's schedule routes (docs/api.md, "Schedules"), over the ``Scheduler``.

Reading needs ``read``; adding, changing and deleting need ``operate``, or ``admin`` for a
schedule whose pools run as root (it goes on running them, unattended); every change is an
audit line. A schedule's template is shown as GET /pool/ID shows a pool (``shown_template``):
a notify secret to nobody; to a read-only token the names of its env but not their values,
no stdin, no copied content, and only the scheme, host and port of a notify URL.
"""

from ..clock import iso_time
from ..errors import InsufficientScope
from . import views
from .api_edge import bottle, caller, note_for_audit
from .notifier import url_origin
from .notify_rules import DEFAULT_ON
from .schedule_spec import Outcome, needed_scope, outcome_of
from .validation import parse_json_body

HIDDEN_COPY = "content"


def shown_template(body, full, with_content):
    """A schedule's stored body as a caller may see it (pure): ``full`` for an operate
    token (env values, stdin, whole notify URLs), ``with_content`` to show a copied file's
    bytes. A notify secret is never shown, only that there is one (``signed``)."""
    data = dict(body)
    if not full:
        data.pop("stdin", None)
        if isinstance(data.get("env"), dict):
            data["env"] = dict.fromkeys(data["env"])
    if isinstance(data.get("copy"), dict) and not (full and with_content):
        data["copy"] = {key: value for key, value in data["copy"].items() if key != HIDDEN_COPY}
    if isinstance(data.get("notify"), list):
        data["notify"] = [{"url": entry.get("url") if full else url_origin(entry.get("url")), "on": entry.get("on", list(DEFAULT_ON)),
                           "signed": entry.get("secret") is not None} if isinstance(entry, dict) else entry
                          for entry in data["notify"]]
    return data


def schedule_json(entry, runs, env_values=True, recent=None):
    """A schedule as stored, with its next due time and its last run (and, for one
    schedule, its latest pools with their outcomes). ``env_values``: the caller may
    operate (shown_template)."""
    data = shown_template(entry.row.body, env_values, recent is not None)
    data.setdefault("timezone", "UTC")
    data.setdefault("missed", "skip")
    data.setdefault("enabled", True)
    last = runs.last.get(entry.name)
    data.update({
        "nextDue": iso_time(entry.next_due),
        "problem": entry.problem,
        "changedBy": entry.row.changed_by,
        "changedTime": iso_time(entry.row.changed),
        "lastRun": None if last is None else {"due": iso_time(last.due), "pool": last.pool_id,
                                              "outcome": last.outcome.value, "error": last.error},
        "lastSuccess": iso_time(runs.last_success.get(entry.name)),
    })
    if recent is not None:
        data["pools"] = [dict(views.pool_json(pool, with_output=False), outcome=outcome_of(pool).value)
                         for pool in recent]
    return data


def _check_root(request, *bodies):
    """A schedule that runs as root, before or after the change, is an admin's to change:
    otherwise an operate token could unset its user and rewrite it."""
    if any(needed_scope(body) == "admin" for body in bodies) and not caller(request).allows("admin"):
        raise InsufficientScope("a schedule that runs as root (or did before this change) needs an admin token "
                                "(it runs unattended)")


def add_schedule_routes(app, scheduler, read_body):
    """GET, POST /schedules; GET, PUT, DELETE /schedules/NAME."""
    runs = scheduler.runs

    def env_values():
        return caller(bottle.request).allows("operate")

    @app.get("/schedules", scope="read")
    def get_schedules():
        shown = env_values()
        return 200, {"schedules": [schedule_json(entry, runs, shown)
                                   for _name, entry in sorted(scheduler.entries.items())],
                     "outcomes": [outcome.value for outcome in Outcome]}

    @app.get("/schedules/<name>", scope="read")
    def get_schedule(name):
        entry = scheduler.get(name)
        return 200, schedule_json(entry, runs, env_values(), scheduler.recent_pools(name))

    @app.post("/schedules", scope="operate")
    def post_schedule():
        data = parse_json_body(read_body())
        _check_root(bottle.request, data)
        entry = scheduler.create(data, caller(bottle.request).name)
        note_for_audit(bottle.request, "schedule %s added: %s" % (entry.name, entry.row.body.get("when")))
        bottle.response.set_header("Location", "/schedules/" + entry.name)
        return 201, schedule_json(entry, runs)

    @app.put("/schedules/<name>", scope="operate")
    def put_schedule(name):
        change = parse_json_body(read_body())
        stored = scheduler.get(name).row.body
        _check_root(bottle.request, stored, dict(stored, **change) if isinstance(change, dict) else {})
        entry = scheduler.change(name, change, caller(bottle.request).name)
        note_for_audit(bottle.request, "schedule %s changed: %s" % (name, ", ".join(sorted(change))[:200]))
        return 200, schedule_json(entry, runs)

    @app.delete("/schedules/<name>", scope="operate")
    def delete_schedule(name):
        entry = scheduler.get(name)
        _check_root(bottle.request, entry.row.body)
        scheduler.delete(name)
        note_for_audit(bottle.request, "schedule %s deleted" % name)
        return 200, {"name": name, "deleted": True}
