"""Errors as data: every error the API can answer, each with a stable snake_case code,
an HTTP status and a message.

Routes raise these; the API edge (``pcci.master.api_edge``) turns each into
``{"error": {"code": ..., "message": ...}}`` with its status. docs/api.md lists every
code; a test keeps the two in step.
"""


class ApiError(Exception):
    status = 500
    code = "internal_error"
    meaning = "a bug in the master; its log has the traceback"
    headers = {}

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def to_json(self):
        return {"error": {"code": self.code, "message": self.message}}


def _error(name, status, code, meaning, headers=None):
    return type(name, (ApiError,), {"status": status, "code": code, "meaning": meaning, "headers": headers or {}})


# 400: the request is wrong; the message names the field and what was expected.
EmptyBody = _error("EmptyBody", 400, "empty_body", "the request needs a JSON body")
MalformedJson = _error("MalformedJson", 400, "malformed_json", "the body is not JSON (or has NaN/Infinity)")
MalformedRequest = _error("MalformedRequest", 400, "malformed_request",
                          "the HTTP request itself is broken (a bad chunked body, say)")
WrongType = _error("WrongType", 400, "wrong_type", "a field has the wrong type or form")
UnknownField = _error("UnknownField", 400, "unknown_field", "the body has a field the endpoint does not know")
EmptyCmd = _error("EmptyCmd", 400, "empty_cmd", "cmd is empty or only spaces")
DuplicateWorker = _error("DuplicateWorker", 400, "duplicate_worker", "a worker is listed twice")
NulByte = _error("NulByte", 400, "nul_byte", "a string holds a NUL byte, which no command can receive")
UnencodableText = _error("UnencodableText", 400, "unencodable_text",
                         "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which cannot be stored")
OutOfRange = _error("OutOfRange", 400, "out_of_range", "a number is outside its allowed range")
BadEventId = _error("BadEventId", 400, "bad_event_id",
                    "Last-Event-ID or ?since= is not an event id (GENERATION-NUMBER, from an id: line)")
BadTarget = _error("BadTarget", 400, "bad_target",
                   "a target expression is malformed; the message names the term and where it starts")
NoMatch = _error("NoMatch", 400, "no_match", "a target expression matches no known worker")
UserNotAllowed = _error("UserNotAllowed", 400, "user_not_allowed",
                        "no targeted worker may run jobs as the user asked for (its allowed_users)")
PoolTooLarge = _error("PoolTooLarge", 400, "pool_too_large", "the pool would have more jobs than max_pool_jobs")
NotifyNotAllowed = _error("NotifyNotAllowed", 400, "notify_not_allowed",
                          "a notify URL is malformed or not in the master's notify_allow")
# 401: who is asking is not established.
MissingToken = _error("MissingToken", 401, "missing_token", "no 'Authorization: Bearer' header")
BadToken = _error("BadToken", 401, "bad_token", "the token is not one the master accepts")
# 403: a browser page must not drive a master that has no tokens; a token may only do what its scope allows.
ForbiddenHost = _error("ForbiddenHost", 403, "forbidden_host",
                       "without api_tokens the API answers only requests addressed to a loopback name or address")
ForbiddenOrigin = _error("ForbiddenOrigin", 403, "forbidden_origin",
                         "without api_tokens a web page from another origin may not submit or kill")
InsufficientScope = _error("InsufficientScope", 403, "insufficient_scope",
                           "the token's scope does not allow this call (read: GET only; operate: submit and kill)")
# 404, 405: what is asked for does not exist.
UnknownPool = _error("UnknownPool", 404, "unknown_pool", "no pool has that id (it may have been purged)")
UnknownWorker = _error("UnknownWorker", 404, "unknown_worker", "no worker of that name is known to the master")
NoSuchEndpoint = _error("NoSuchEndpoint", 404, "not_found", "no endpoint has that path")
MethodNotAllowed = _error("MethodNotAllowed", 405, "method_not_allowed", "the endpoint does not take that method")
UnknownFile = _error("UnknownFile", 404, "unknown_file",
                     "no uploaded file has that sha256 (upload it with PUT /files/SHA256 first; it may have been purged)")
# 409: the request conflicts with the present state.
UploadConflict = _error("UploadConflict", 409, "upload_conflict",
                        "an upload does not start where the master's copy of the file ends (GET /files/SHA256 says "
                        "where), or another upload of that file is under way")
WorkerOnline = _error("WorkerOnline", 409, "worker_online",
                      "a worker that is connected cannot be forgotten: stop it (or its link) first")
# 307: another master is the active one.
class NotLeader(ApiError):
    status = 307
    code = "not_leader"
    meaning = ("this master is a standby: the answer's Location is the same call on the active master "
               "(curl -L, pcci and the dashboard follow it)")

    def __init__(self, message, location):
        super().__init__(message)
        self.headers = {"Location": location}
        self.location = location

    def to_json(self):
        return {"error": {"code": self.code, "message": self.message, "location": self.location}}


DigestMismatch = _error("DigestMismatch", 400, "sha256_mismatch",
                        "the uploaded bytes do not have the sha256 the path names; they were dropped")
# 408, 411, 413: the request's transfer.
LengthRequired = _error("LengthRequired", 411, "length_required",
                        "an upload needs a Content-Length (the size is checked before any byte is stored)")
RequestTimeout = _error("RequestTimeout", 408, "request_timeout", "the body stopped arriving before its end")
PayloadTooLarge = _error("PayloadTooLarge", 413, "payload_too_large", "the body is over max_body_bytes")
UriTooLong = _error("UriTooLong", 414, "uri_too_long", "the request line is over 8 KiB (the server's limit)")
# 429, 500, 503: the master cannot do it now.
Busy = _error("Busy", 429, "busy", "a targeted worker has max_worker_backlog unfinished jobs, or the store is "
             "behind; retry after the Retry-After seconds", headers={"Retry-After": "1"})
InternalError = _error("InternalError", 500, "internal_error", "a bug in the master; its log has the traceback")
NoWorkersOnline = _error("NoWorkersOnline", 503, "no_workers_online",
                         "no worker is online to run a pool for \"every online worker\"")
StorageFull = _error("StorageFull", 503, "storage_full",
                     "the master's disk is full: it accepts no new pool until space returns (reads go on)")
StoreUnavailable = _error("StoreUnavailable", 503, "store_unavailable",
                          "the pool store is not saving (an I/O error, a damaged file); /health says why")
NoLeader = _error("NoLeader", 503, "no_leader",
                  "this master is a standby and no master holds the lease right now (an election is under way, "
                  "or the database is unreachable); retry in a few seconds")
OutboxFull = _error("OutboxFull", 503, "outbox_full",
                    "too many notifications are waiting to be sent; pools with notify are refused until they are")
MetricsUnavailable = _error("MetricsUnavailable", 503, "metrics_unavailable",
                            "GET /metrics needs the Python library prometheus_client (python3-prometheus-client), "
                            "which the master did not find at start")

ALL = [EmptyBody, MalformedJson, MalformedRequest, WrongType, UnknownField, EmptyCmd, DuplicateWorker, NulByte,
       UnencodableText, OutOfRange, BadEventId, BadTarget, NoMatch, UserNotAllowed, PoolTooLarge, MissingToken, BadToken, ForbiddenHost, ForbiddenOrigin,
       InsufficientScope, NotLeader, UnknownPool, UnknownWorker, WorkerOnline,
       NoSuchEndpoint, UnknownFile, UploadConflict, DigestMismatch, LengthRequired,
       MethodNotAllowed, RequestTimeout, PayloadTooLarge, UriTooLong, Busy, InternalError, NoWorkersOnline, StorageFull,
       StoreUnavailable, NoLeader, MetricsUnavailable]
ALL += [NotifyNotAllowed, OutboxFull]
# Schedules (POST /schedules and friends).
UnknownSchedule = _error("UnknownSchedule", 404, "unknown_schedule", "no schedule has that name")
ScheduleExists = _error("ScheduleExists", 409, "schedule_exists",
                        "a schedule of that name exists: change it with PUT /schedules/NAME, or delete it first")
TooManySchedules = _error("TooManySchedules", 409, "too_many_schedules",
                          "the master holds max_schedules schedules already; delete one or raise the limit")
ALL += [UnknownSchedule, ScheduleExists, TooManySchedules]

# The error a bare HTTP status stands for, when bottle or the server raises it.
_BY_STATUS = {400: MalformedRequest, 401: MissingToken, 404: NoSuchEndpoint, 405: MethodNotAllowed,
              408: RequestTimeout, 413: PayloadTooLarge, 414: UriTooLong, 500: InternalError, 503: StoreUnavailable}


def for_status(status):
    """The error class for an HTTP status that bottle raised on its own."""
    return _BY_STATUS.get(status, InternalError)


class CannotStart(Exception):
    """Something outside the config that stops a service from starting (a damaged store,
    say). Its message is one line: what is wrong, where, and what to do."""


class ConfigError(Exception):
    """All problems found in one config file, each as 'file: key: message'."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = list(problems)
