"""The REST API described as OpenAPI 3.0, served at /openapi.json (for clients and fuzzers)."""

from .. import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}
_STATES = ["queued", "running", "succeeded", "failed", "killed", "timed_out", "lost", "offline", "unknown_worker"]


def _errors(*statuses):
    return {str(s): {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
            for s in statuses}


def _ok(status, schema, description="ok"):
    return {str(status): {"description": description,
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/" + schema}}}}}


_POOL_ID = {"name": "pool_id", "in": "path", "required": True, "schema": {"type": "string"}}

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "PCCI master", "version": __version__,
             "description": "Run shell commands across a cluster of PCCI workers."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            "JobRequest": {"type": "object", "required": ["cmd"], "additionalProperties": False, "properties": {
                "cmd": {"type": "string", "minLength": 1},
                "workers": {"oneOf": [{"type": "array", "items": {"type": "string", "minLength": 1}},
                                      {"type": "string", "enum": ["*"]}]},
                "timeout": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "cwd": {"type": "string", "minLength": 1}}},
            "Submitted": {"type": "object", "required": ["id", "url", "status", "jobs"], "properties": {
                "id": {"type": "string"}, "url": {"type": "string"}, "status": {"type": "string"},
                "jobs": {"type": "object", "additionalProperties": {"type": "string", "enum": _STATES}}}},
            "Job": {"type": "object", "required": ["worker", "state", "exitCode"], "properties": {
                "worker": {"type": "string"}, "state": {"type": "string", "enum": _STATES},
                "exitCode": {"type": "integer", "nullable": True}, "signal": {"type": "string", "nullable": True},
                "startTime": {"type": "string", "nullable": True}, "endTime": {"type": "string", "nullable": True},
                "stdout": {"type": "string"}, "stderr": {"type": "string"},
                "stdoutTruncated": {"type": "boolean"}, "stderrTruncated": {"type": "boolean"}}},
            "Pool": {"type": "object", "required": ["id", "cmd", "status"], "properties": {
                "id": {"type": "string"}, "cmd": {"type": "string"},
                "status": {"type": "string", "enum": ["running", "done"]},
                "exitCode": {"type": "integer", "nullable": True},
                "createdTime": {"type": "string"}, "startTime": {"type": "string", "nullable": True},
                "endTime": {"type": "string", "nullable": True},
                "jobs": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Job"}}}},
            "PoolPage": {"type": "object", "required": ["pools", "next"], "properties": {
                "pools": {"type": "array", "items": {"$ref": "#/components/schemas/Pool"}},
                "next": {"type": "string", "nullable": True}}},
            "Workers": {"type": "object", "required": ["workers"], "properties": {
                "workers": {"type": "array", "items": {"type": "object", "required": ["name", "online"]}}}},
            "KillRequest": {"type": "object", "additionalProperties": False, "properties": {
                "workers": {"type": "array", "items": {"type": "string", "minLength": 1}}}},
            "KillResult": {"type": "object", "required": ["id", "workers"], "properties": {
                "id": {"type": "string"}, "workers": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/job": {"post": {
            "summary": "Run a command on workers; returns at once with the pool id",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/JobRequest"}}}},
            "responses": dict(_ok(202, "Submitted", "accepted"), **_errors(400, 401, 413))}},
        "/pool/{pool_id}": {"get": {
            "summary": "One pool with every job",
            "parameters": [_POOL_ID, {"name": "wait", "in": "query", "schema": {
                "type": "number", "minimum": 0, "maximum": 3600}}],
            "responses": dict(_ok(200, "Pool"), **_errors(400, 401, 404))}},
        "/pools": {"get": {
            "summary": "Pools, newest first",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["running", "done"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                {"name": "before", "in": "query", "schema": {"type": "string"}}],
            "responses": dict(_ok(200, "PoolPage"), **_errors(400, 401))}},
        "/workers": {"get": {"summary": "Workers with their state and stats",
                             "responses": dict(_ok(200, "Workers"), **_errors(401))}},
        "/kill/{pool_id}": {"put": {
            "summary": "Kill a pool's jobs (all of its workers when none are listed)",
            "parameters": [_POOL_ID],
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/KillRequest"}}}},
            "responses": dict(_ok(200, "KillResult"), **_errors(400, 401, 404, 413))}},
        "/health": {"get": {"summary": "Liveness for monitoring", "security": [],
                            "responses": _ok(200, "Health")}},
    },
}
