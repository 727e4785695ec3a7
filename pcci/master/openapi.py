"""The REST API described as OpenAPI 3.0, served at /openapi.json (for clients and fuzzers).

Drawn from the same vocabulary as the code (``pcci.states``, ``pcci.errors``) and
checked against real responses by the schemathesis run in tests/test_faults.py, so it
cannot drift from what the API returns.
"""

from .. import __version__, errors
from ..states import DeliveryState, JobState, KillOutcome, NotifyOn, OfflinePolicy, PoolStatus, values
from . import notify_rules, worker_stats
from .notify_allow import MAX_URL_CHARS
from .validation import MAX_PAGE, MAX_TIMEOUT_SECONDS, MAX_WAIT_SECONDS

_TIME = {"type": "string", "format": "date-time", "nullable": True}
_STATES = values(JobState)


def _ref(name):
    return {"$ref": "#/components/schemas/" + name}


def _object(properties, required=None):
    """A closed object: a key the code adds but the document lacks fails the conformance check."""
    return {"type": "object", "properties": properties, "required": list(required or properties),
            "additionalProperties": False}


def _errors(*statuses):
    return {str(status): {"description": ", ".join(sorted(e.code for e in errors.ALL if e.status == status)),
                          "content": {"application/json": {"schema": _ref("Error")}}}
            for status in statuses}


def _ok(status, schema, description="ok"):
    return {str(status): {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}}


_SHA256 = {"name": "sha256", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}
_POOL_ID = {"name": "pool_id", "in": "path", "required": True, "schema": {"type": "string"}}
# Where a follower resumes: the id of the last event it had (docs/api.md, "Events").
_RESUME = [{"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
           {"name": "since", "in": "query", "schema": {"type": "string"}}]


def _event_stream(description, events):
    """A text/event-stream answer; its schema describes one event, as SSE-aware tools read it."""
    event = {"type": "object", "properties": {
        "id": {"type": "string"}, "event": {"type": "string", "enum": list(events)},
        "data": {"type": "string", "description": "JSON"}, "retry": {"type": "integer"}}}
    return {"200": {"description": description, "content": {"text/event-stream": {"schema": event}}}}


_POOL_COMMON = {
    "id": {"type": "string"}, "cmd": {"type": "string"},
    "status": {"type": "string", "enum": values(PoolStatus)},
    "exitCode": {"type": "integer", "nullable": True},
    "createdTime": {"type": "string", "format": "date-time"}, "startTime": _TIME, "endTime": _TIME,
    "timeout": {"type": "number", "nullable": True}, "cwd": {"type": "string", "nullable": True},
    "states": {"type": "object", "additionalProperties": {"type": "integer"}},
    "submittedBy": {"type": "string", "nullable": True, "description": "the API token's name"},
    "submittedFrom": {"type": "string", "nullable": True, "description": "the client's address"},
    "killedBy": {"type": "string", "nullable": True, "description": "the token name of the last kill"},
    "target": {"type": "object", "nullable": True, "description": "workers and exclude as submitted",
               "properties": {"workers": {}, "exclude": {}}},
    "rollout": {"type": "object", "nullable": True, "description": "a rolling batch or offline queueing",
                "properties": {"batch": {"type": "integer", "nullable": True},
                               "maxFailures": {"type": "integer", "nullable": True}, "queueUntil": _TIME}},
    "user": {"type": "string", "nullable": True, "description": "the user the jobs run as (null: each worker's default)"},
    "copy": {"type": "object", "nullable": True, "description": "a file written instead of a command (POST /copy)",
             "properties": {"dest": {"type": "string"}, "mode": {"type": "integer", "nullable": True},
                            "owner": {"type": "string", "nullable": True},
                            "bytes": {"type": "integer", "nullable": True},
                            "sha256": {"type": "string", "nullable": True},
                            "unpack": {"type": "string", "nullable": True, "enum": ["tar", None],
                                       "description": "tar: a directory tree unpacked beneath dest"},
                            "fetch": {"type": "boolean", "description": "a reverse copy (POST /fetch): dest is "
                                                                        "the path read on each worker"},
                            "relay": {"type": "boolean", "description": "false: asked to go direct from the "
                                                                        "master, not through relays"}}},
    "scheduledBy": {"type": "string", "nullable": True, "description": "the schedule that made it (GET /schedules)"},
    "scheduledFor": dict(_TIME, description="the due time it was made for"),
}

_NAMES_OR_EXPRESSION = {"oneOf": [{"type": "array", "items": {"type": "string", "minLength": 1}},
                                 {"type": "string", "minLength": 1,
                                  "description": "a target expression: names, node[1-4], @group, key=value, *, !term"}]}
# Where a pool runs and how its jobs start: the same fields in POST /job and POST /copy.
_TARGETING = {
    "workers": _NAMES_OR_EXPRESSION,
    "exclude": _NAMES_OR_EXPRESSION,
    "batch": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^(100|[1-9][0-9]?)%$"}]},
    "maxFailures": {"type": "integer", "minimum": 0},
    "offline": {"type": "string", "enum": values(OfflinePolicy)},
    "queueTimeout": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": MAX_TIMEOUT_SECONDS},
}

SCHEMAS = {
    "Error": _object({"error": _object({"code": {"type": "string", "enum": sorted(e.code for e in errors.ALL)},
                                        "message": {"type": "string"}})}),
    "JobRequest": {"type": "object", "required": ["cmd"], "additionalProperties": False, "properties": dict(
        _TARGETING,
        cmd={"type": "string", "minLength": 1},
        user={"type": "string", "pattern": "^[a-z_][a-z0-9_.-]{0,31}$",
              "description": "the user the jobs run as; each worker's allowed_users say which it may"},
        timeout={"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": MAX_TIMEOUT_SECONDS},
        env={"type": "object", "additionalProperties": {"type": "string"}},
        cwd={"type": "string", "minLength": 1},
        stdin={"oneOf": [{"type": "string"}, _object({"base64": {"type": "string"}})],
               "description": "fed to each job's standard input: text, or any bytes in base64 (at most 512 KiB)"})},
    "CopyRequest": {"type": "object", "required": ["dest"], "additionalProperties": False,
                    "properties": dict(
        _TARGETING,
        dest={"type": "string", "pattern": "^/"},
        content={"type": "string", "format": "byte", "description": "the file's bytes, base64 (or sha256)"},
        sha256={"type": "string", "pattern": "^[0-9a-f]{64}$",
                "description": "instead of content: a file uploaded with PUT /files/{sha256}, sent in chunks"},
        unpack={"type": "string", "enum": ["tar"],
                "description": "with sha256: the file is a tar stream of a directory, unpacked beneath dest"},
        mode={"oneOf": [{"type": "string", "pattern": "^0?[0-7]{3,4}$"},
                        {"type": "integer", "minimum": 0, "maximum": 4095}]},
        owner={"type": "string"},
        relay={"type": "boolean", "default": True,
               "description": "false: the master sends this copy to every worker itself, even where the cluster "
                              "relays copies through workers (copy_relay_fanout)"})},
    "FetchRequest": {"type": "object", "required": ["path"], "additionalProperties": False,
                     "properties": dict(_TARGETING, path={"type": "string", "pattern": "^/"})},
    "UploadedFile": _object({"sha256": {"type": "string"}, "bytes": {"type": "integer", "nullable": True},
                             "received": {"type": "integer"}, "complete": {"type": "boolean"}}),
    "Submitted": _object({"id": {"type": "string"}, "url": {"type": "string"},
                          "status": {"type": "string", "enum": values(PoolStatus)},
                          "jobs": {"type": "object", "additionalProperties": {"type": "string", "enum": _STATES}}}),
    "Job": _object({"worker": {"type": "string"}, "state": {"type": "string", "enum": _STATES},
                    "exitCode": {"type": "integer", "nullable": True, "minimum": 0, "maximum": 255},
                    "signal": {"type": "string", "nullable": True}, "startTime": _TIME, "endTime": _TIME,
                    "stdout": {"type": "string"}, "stderr": {"type": "string"},
                    "stdoutTruncated": {"type": "boolean"}, "stderrTruncated": {"type": "boolean"}}),
    "Pool": _object(dict(_POOL_COMMON, env={"type": "object", "nullable": True,
                                            "description": "values are null for a read-only token",
                                            "additionalProperties": {"type": "string", "nullable": True}},
                         jobs={"type": "object", "additionalProperties": _ref("Job")})),
    "PoolSummary": _object(dict(_POOL_COMMON, workers={"type": "array", "items": {"type": "string"}})),
    "PoolPage": _object({"pools": {"type": "array", "items": _ref("PoolSummary")},
                         "next": {"type": "string", "nullable": True}}),
    "Worker": _object({"name": {"type": "string"}, "online": {"type": "boolean"},
                       "address": {"type": "string", "nullable": True},
                       "connectedSince": _TIME, "lastHeartbeat": _TIME, "lastSeen": _TIME, "firstSeen": _TIME,
                       "stats": worker_stats.openapi_schema(),
                       "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                       "users": {"type": "array", "items": {"type": "string"},
                                 "description": "the users its jobs may run as, its own first"},
                       "runningJobs": {"type": "array", "items": {"type": "string"}},
                       "queuedJobs": {"type": "array", "items": {"type": "string"}}}),
    "Workers": _object({"workers": {"type": "array", "items": _ref("Worker")}}),
    "KillRequest": {"type": "object", "additionalProperties": False, "properties": {
        "workers": {"type": "array", "items": {"type": "string", "minLength": 1}}}},
    "KillResult": _object({"id": {"type": "string"}, "workers": {"type": "object", "additionalProperties": {
        "type": "string", "enum": values(KillOutcome)}}}),
    "Forgotten": _object({"name": {"type": "string"}, "forgotten": {"type": "boolean", "enum": [True]}}),
    # An active master's answer has workersOnline, activePools and store; a standby's
    # (high-availability.md) has active and lease instead.
    "Health": _object({"status": {"type": "string", "enum": ["ok", "store_failing"]},
                       "role": {"type": "string", "enum": ["active", "standby"]},
                       "version": {"type": "string"}, "workersOnline": {"type": "integer"},
                       "activePools": {"type": "integer"}, "startTime": {"type": "string", "format": "date-time"},
                       "store": _object({"saving": {"type": "boolean"}, "full": {"type": "boolean"},
                                         "backlog": {"type": "integer"},
                                         "error": {"type": "string", "nullable": True},
                                         "failingSince": _TIME}),
                       "active": dict(_object({"api": {"type": "string", "nullable": True},
                                               "workers": {"type": "string", "nullable": True}}), nullable=True),
                       "lease": _object({"holder": {"type": "string", "nullable": True},
                                         "reachable": {"type": "boolean"}})},
                      required=["status", "role", "version", "startTime"]),
}

# Pool notifications (docs/api.md, "Notifications"): asked for in both requests, shown
# only for a pool that has them (so not required).
_NOTIFY = {"type": "array", "maxItems": notify_rules.MAX_NOTIFY, "items": {
    "type": "object", "required": ["url"], "additionalProperties": False, "properties": {
        "url": {"type": "string", "maxLength": MAX_URL_CHARS, "description": "allowed by the master's notify_allow"},
        "on": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": values(NotifyOn)}},
        "secret": {"type": "string", "minLength": 1, "maxLength": notify_rules.MAX_SECRET_CHARS}}}}
for _request in ("JobRequest", "CopyRequest"):
    SCHEMAS[_request]["properties"]["notify"] = _NOTIFY
_ATTEMPT = {"type": "object", "required": ["at"], "additionalProperties": False, "properties": {
    "at": {"type": "string", "format": "date-time"}, "status": {"type": "integer"}, "error": {"type": "string"}}}
SCHEMAS["Pool"]["properties"]["notifications"] = {"type": "array", "items": _object({
    "id": {"type": "string", "description": "the X-PCCI-Delivery id"}, "url": {"type": "string"},
    "on": {"type": "array", "items": {"type": "string", "enum": values(NotifyOn)}},
    "state": {"type": "string", "enum": values(DeliveryState)},
    "attempts": {"type": "array", "items": _ATTEMPT}, "nextAttempt": _TIME})}

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "PCCI master", "version": __version__,
             "description": "Run shell commands across a cluster of PCCI workers. docs/api.md has the prose."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": SCHEMAS},
    "security": [{"bearer": []}],
    "paths": {
        "/job": {"post": {
            "summary": "Run a command on workers; returns at once with the pool id, or with ?wait= once the "
                       "pool is done (or the wait is over)",
            "parameters": [{"name": "wait", "in": "query", "description": "wait up to this many seconds for the "
                            "pool to finish, then answer it as GET /pool/ID?wait= does",
                            "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("JobRequest")}}},
            "responses": dict(_ok(202, "Submitted", "accepted (without ?wait=)"),
                              **_ok(200, "Pool", "with ?wait=: the pool once done, or as it is when the wait "
                                                 "is over (its status says which)"),
                              **_errors(400, 401, 403, 408, 413, 429, 500, 503))}},
        "/copy": {"post": {
            "summary": "Write a file on workers, atomically (a pool whose jobs write it); returns at once",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CopyRequest")}}},
            "responses": dict(_ok(202, "Submitted", "accepted"), **_errors(400, 401, 403, 404, 408, 413, 429, 500,
                                                                           503))}},
        "/fetch": {"post": {
            "summary": "Read a file on workers and bring it to the master (a pool whose jobs send it); returns at once",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FetchRequest")}}},
            "responses": dict(_ok(202, "Submitted", "accepted"), **_errors(400, 401, 403, 408, 413, 429, 500, 503))}},
        "/pool/{pool_id}/files/{node}": {"get": {
            "summary": "The file a node sent back for a POST /fetch pool",
            "parameters": [_POOL_ID, {"name": "node", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": dict({"200": {"description": "the file's bytes", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
                **_errors(401, 403, 404))}},
        "/files/{sha256}": {
            "put": {
                "summary": "Upload a file for POST /copy (sha256), streamed to the master's disk; a cut-off upload "
                           "goes on from ?offset= (GET says where)",
                "parameters": [_SHA256,
                               {"name": "size", "in": "query", "required": True,
                                "schema": {"type": "integer", "minimum": 0}},
                               {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": dict(_ok(200, "UploadedFile", "a part is held"),
                                  **_ok(201, "UploadedFile", "the file is held whole, its sha256 checked"),
                                  **_errors(400, 401, 403, 408, 409, 411, 413, 503))},
            "get": {
                "summary": "How many bytes of an uploaded file the master holds",
                "parameters": [_SHA256],
                "responses": dict(_ok(200, "UploadedFile"), **_errors(400, 401, 403, 404))}},
        "/pool/{pool_id}": {"get": {
            "summary": "One pool with every job",
            "parameters": [_POOL_ID, {"name": "wait", "in": "query", "schema": {
                "type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS}}],
            "responses": dict(_ok(200, "Pool"), **_errors(400, 401, 403, 404))}},
        "/pool/{pool_id}/events": {"get": {
            "summary": "Server-Sent Events of one pool: job states, output as it is produced, and done; "
                       "the stream ends after done",
            "parameters": [_POOL_ID] + _RESUME,
            "responses": dict(_event_stream("events: job, output, done (and reset when resuming is not "
                                            "possible)", ("job", "output", "done", "reset")),
                              **_errors(400, 401, 403, 404))}},
        "/events": {"get": {
            "summary": "Server-Sent Events of the cluster: workers (state and stats) and pools created or "
                       "ended; never ends",
            "parameters": _RESUME,
            "responses": dict(_event_stream("events: worker, worker_forgotten, pool (and reset)",
                                                ("worker", "worker_forgotten", "pool", "reset")),
                              **_errors(400, 401, 403))}},
        "/pools": {"get": {
            "summary": "Pools, newest first",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": values(PoolStatus)}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
                {"name": "before", "in": "query", "schema": {"type": "string"}}],
            "responses": dict(_ok(200, "PoolPage"), **_errors(400, 401, 403))}},
        "/workers": {"get": {"summary": "Workers with their state, stats and labels; those a target "
                                        "expression selects with ?target= and ?exclude=",
                             "parameters": [{"name": "target", "in": "query", "schema": {"type": "string"}},
                                            {"name": "exclude", "in": "query", "schema": {"type": "string"}}],
                             "responses": dict(_ok(200, "Workers"), **_errors(400, 401, 403))}},
        "/kill/{pool_id}": {"put": {
            "summary": "Kill a pool's jobs (all of its workers when none are listed)",
            "parameters": [_POOL_ID],
            "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("KillRequest")}}},
            "responses": dict(_ok(200, "KillResult"), **_errors(400, 401, 403, 404, 408, 413))}},
        "/health": {"get": {"summary": "Liveness for monitoring; 503 while the store is not saving, or with "
                                       "?role= while this master is not in that role (active or standby)",
                            "security": [],
                            "parameters": [{"name": "role", "in": "query", "required": False,
                                            "schema": {"type": "string", "enum": ["active", "standby"]}}],
                            "responses": dict(_ok(200, "Health"), **{"503": _ok(503, "Health")["503"]},
                                              **_errors(400, 403))}},
        "/workers/{name}": {"delete": {
            "summary": "Forget a worker that will not return (admin): the master drops it and its record; its pools' "
                       "history stays. Refused while it is connected.",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": dict(_ok(200, "Forgotten"), **_errors(401, 403, 404, 409, 503))}},
        "/metrics": {"get": {
            "summary": "The master's and the workers' numbers in the Prometheus text format (scope read; no "
                       "token from the networks in metrics_open_to)",
            "responses": dict({"200": {"description": "Prometheus text exposition 0.0.4", "content": {
                "text/plain": {"schema": {"type": "string"}}}}}, **_errors(401, 403, 503))}},
        "/": {"get": {"summary": "The dashboard (HTML); it asks this API for everything, with the user's token",
                      "security": [],
                      "responses": {"200": {"description": "the dashboard's page", "content": {
                          "text/html": {"schema": {"type": "string"}}}}, "304": {"description": "not modified"}}}},
        "/ui/{name}": {"get": {
            "summary": "The dashboard's scripts, styles and icon", "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": dict({"200": {"description": "the file", "content": {
                "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}},
                "image/svg+xml": {"schema": {"type": "string"}}}}, "304": {"description": "not modified"}},
                **_errors(404))}},
        "/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": {"200": {"description": "the OpenAPI document", "content": {
                                      "application/json": {"schema": {"type": "object"}}}}}}},
    },
}


def _schedule_parts():
    """Schedules (docs/api.md, "Schedules"): a schedule's own fields, and its pool template,
    which is POST /job's body (or, with copy, POST /copy's): its fields come from JobRequest."""
    from . import schedule_spec
    from .schedule_spec import MAX_SCHEDULE_BYTES, Missed, NAME, Outcome
    template = dict(SCHEMAS["JobRequest"]["properties"])
    own = {"name": {"type": "string", "pattern": "^%s$" % NAME.pattern},
           "when": {"type": "string", "description": "\"every 30s\" (s, m, h, d; at least schedule_min_interval) "
                                                     "or a five-field cron expression"},
           "timezone": {"type": "string", "description": "an IANA timezone for the cron expression (UTC)"},
           "missed": {"type": "string", "enum": [item.value for item in Missed]},
           "enabled": {"type": "boolean"},
           "managedBy": {"type": "string", "pattern": "^%s$" % NAME.pattern,
                         "description": "what manages the schedule (the Ansible role's mark); the master keeps it"},
           "copy": {"type": "object", "description": "POST /copy's dest, content, mode, owner and relay, instead of "
                                                     "cmd",
                    "properties": {key: SCHEMAS["CopyRequest"]["properties"][key]
                                   for key in schedule_spec.COPY_FIELDS}}}
    request = {"type": "object", "required": ["name", "when"], "additionalProperties": False,
               "description": "at most %d bytes as JSON" % MAX_SCHEDULE_BYTES, "properties": dict(template, **own)}
    change = dict(request, required=[])
    outcomes = [item.value for item in Outcome]
    pool = dict(SCHEMAS["PoolSummary"], properties=dict(SCHEMAS["PoolSummary"]["properties"],
                                                        outcome={"type": "string", "enum": outcomes}))
    pool["required"] = pool["required"] + ["outcome"]
    shown = dict(template, **own)
    # As shown (schedule_api.shown_template): a notify secret never, only whether there is one.
    shown["notify"] = {"type": "array", "items": _object({
        "url": {"type": "string", "description": "scheme://host:port/... only, to a read token"},
        "on": _NOTIFY["items"]["properties"]["on"],
        "signed": {"type": "boolean", "description": "it has a secret (which is never shown)"}})}
    shown.update({
        "nextDue": _TIME, "problem": {"type": "string", "nullable": True,
                                      "description": "why its stored body no longer checks out (it is off)"},
        "changedBy": {"type": "string", "nullable": True}, "changedTime": _TIME, "lastSuccess": _TIME,
        "lastRun": dict(_object({"due": _TIME, "pool": {"type": "string", "nullable": True},
                                 "outcome": {"type": "string", "enum": outcomes},
                                 "error": {"type": "string", "nullable": True}}), nullable=True),
        "pools": {"type": "array", "items": pool, "description": "GET /schedules/NAME only: its latest pools"}})
    schedule = {"type": "object", "additionalProperties": False, "properties": shown,
                "required": ["name", "when", "timezone", "missed", "enabled", "nextDue", "problem", "changedBy",
                             "changedTime", "lastRun", "lastSuccess"]}
    schemas = {"ScheduleRequest": request, "ScheduleChange": change, "Schedule": schedule,
               "Schedules": _object({"schedules": {"type": "array", "items": _ref("Schedule")},
                                     "outcomes": {"type": "array", "items": {"type": "string"}}}),
               "ScheduleDeleted": _object({"name": {"type": "string"}, "deleted": {"type": "boolean"}})}
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths = {
        "/schedules": {
            "get": {"summary": "Every schedule, with its next due time and last run",
                    "responses": dict(_ok(200, "Schedules"), **_errors(401, 403))},
            "post": {"summary": "Add a schedule: a pool template (POST /job's body) fired on a timetable, "
                                "exactly once per due time (operate; admin for user root)",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": _ref("ScheduleRequest")}}},
                     "responses": dict(_ok(201, "Schedule", "added"),
                                       **_errors(400, 401, 403, 408, 409, 413, 503))}},
        "/schedules/{name}": {
            "get": {"summary": "One schedule with its latest pools and their outcomes", "parameters": name,
                    "responses": dict(_ok(200, "Schedule"), **_errors(401, 403, 404))},
            "put": {"summary": "Change, enable or disable a schedule: the fields given replace its own (null "
                               "removes one)", "parameters": name,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": _ref("ScheduleChange")}}},
                    "responses": dict(_ok(200, "Schedule"), **_errors(400, 401, 403, 404, 408, 413, 503))},
            "delete": {"summary": "Delete a schedule (its pools stay)", "parameters": name,
                       "responses": dict(_ok(200, "ScheduleDeleted"), **_errors(401, 403, 404, 503))}},
    }
    return schemas, paths


_SCHEDULE_SCHEMAS, _SCHEDULE_PATHS = _schedule_parts()
SCHEMAS.update(_SCHEDULE_SCHEMAS)
SPEC["paths"].update(_SCHEDULE_PATHS)
