"""Errors as data: each API error has a stable snake_case code, a message and an HTTP status.

Routes raise these; one hook in the API turns them into
``{"error": {"code": ..., "message": ...}}`` with the right status.
"""


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message, code=None, status=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status

    def to_json(self):
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


# Bottle raises its own HTTPError for routing problems; these name them.
HTTP_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    500: "internal_error",
    503: "unavailable",
}


def code_for_status(status):
    return HTTP_STATUS_CODES.get(status, "http_%d" % status)


class ConfigError(Exception):
    """All problems found in one config file, each as 'file: key: message'."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = list(problems)
