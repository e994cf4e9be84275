"""Domain errors. Services raise these; one handler in main.py renders `{"detail": ...}`."""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    detail = "Bad request"
    headers: dict[str, str] | None = None
    # A chat turn that failed after its conversation existed names it, so the client goes on
    # in the same conversation instead of starting a new one (set by chat/service.py).
    conversation_id: int | None = None
    # What a failed chat turn's tools already did, in words (set by chat/service.py): the
    # answer says it beside `detail`, which stays the contract's sentence.
    done: str | None = None

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        self.detail = detail or self.detail
        if headers is not None:
            self.headers = headers
        super().__init__(self.detail)

    @property
    def told(self) -> str:
        """Everything the answer says, as one text (a stream's error, a stored reply)."""
        return f"{self.detail} {self.done}" if self.done else self.detail


class NotAuthenticated(AppError):
    status_code = 401
    detail = "Not authenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidToken(NotAuthenticated):
    detail = "Invalid or expired token"


class InvalidCredentials(NotAuthenticated):
    detail = "Invalid email or password"


class Forbidden(AppError):
    status_code = 403
    detail = "You can only access your own resources"


class NotFound(AppError):
    status_code = 404
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    detail = "Conflict"


class Unprocessable(AppError):
    status_code = 422
    detail = "Unprocessable request"


class ServiceUnavailable(AppError):
    status_code = 503
    detail = "The service is temporarily unavailable. Please try again in a moment."
    headers = {"Retry-After": "5"}


class DatabaseUnavailable(ServiceUnavailable):
    detail = "The database is temporarily unavailable. Please try again in a moment."


class ModelUnavailable(ServiceUnavailable):
    detail = "I'm having trouble processing your request right now. Please try again in a moment."
    headers = {"Retry-After": "10"}


class ModelMisconfigured(AppError):
    """The model upstream refused the request itself (M1): a retry would fail the same way."""

    status_code = 502
    detail = (
        "The assistant is not available: this service's connection to its language model is "
        "misconfigured. Please tell the service's operators; retrying will not help."
    )


# --- OpenAPI documentation of the error answers -------------------------------------------------
_DESCRIPTIONS = {
    401: "Missing, malformed or expired token",
    403: "The token's user is not the user in the path",
    404: "Not found (or not yours)",
    409: "Conflict, or a request with the same Idempotency-Key is still running",
    413: "Request body too large",
    422: "Invalid input",
    429: "Rate limit exceeded",
    502: "The model upstream refused the request: the service is misconfigured (do not retry)",
    503: "A dependency (database or model) is unavailable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """The `responses=` entry documenting error answers with the one error shape."""
    from todochat.schemas import ErrorBody

    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}
