"""Every error turned into an HTTP answer, in one place.

Domain errors carry a kind (services/errors.py), not a status; `STATUS_BY_KIND` is the
one table from kind to status. Validation errors of request parameters and bodies are
formatted by services/validation.py, like ingest's per-event results. A database that
does not answer is 503 with Retry-After on every route; any other unexpected error is
a bare 500 that names nothing of the request.

Every body has `detail`; refusals that concern fields add `errors: [{field, reason}]`,
and a refused batch adds `results` (one per event). POST /v1/fhir answers in FHIR: its
refusals are an OperationOutcome (application/fhir+json) naming each element.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.exceptions import DatabaseUnavailable, RequestBodyTooLarge
from services.errors import (
    Conflict,
    DrgwatchError,
    Invalid,
    Malformed,
    NotAllowed,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMedia,
)
from services.ingest.exceptions import PayloadRejected
from services.ingest.fhir.exceptions import FhirRefused
from services.ingest.fhir.outcome import outcome_of
from services.reference.exceptions import (
    ChargemasterRefused,
    RuleFilesRefused,
    RuleRefused,
    UnpricedItems,
)
from services.storage.engine import is_unavailable
from services.validation import FieldError, field_errors

log = logging.getLogger(__name__)

# most specific first: TooLarge and UnsupportedMedia are also Invalid
STATUS_BY_KIND: tuple[tuple[type[DrgwatchError], int], ...] = (
    (Malformed, 400),
    (Unauthenticated, 401),
    (NotAllowed, 403),
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (UnsupportedMedia, 415),
    (Invalid, 422),
    (RateLimited, 429),
    (Unavailable, 503),
)
FHIR_PATH = "/v1/fhir"
FHIR_JSON = "application/fhir+json"
# FastAPI's own answer to a body that is not UTF-8
_BODY_PARSE_ERROR = "There was an error parsing the body"


def status_of(error: DrgwatchError) -> int:
    for kind, status in STATUS_BY_KIND:
        if isinstance(error, kind):
            return status
    return 400


def error_response(error: DrgwatchError) -> JSONResponse:
    """The answer to a domain error (also used by the authentication middleware)."""
    body: dict[str, Any] = {"detail": error.message}
    headers: dict[str, str] | None = None
    if isinstance(error, PayloadRejected):
        body["errors"] = [e.model_dump() for e in error.errors]
        if error.results:
            body["results"] = [r.model_dump() for r in error.results]
    if isinstance(error, RuleFilesRefused):
        body["errors"] = [
            {"field": problem.field or "file", "reason": str(problem)} for problem in error.problems
        ]
    if isinstance(error, RuleRefused | ChargemasterRefused | UnpricedItems):
        body["errors"] = [e.model_dump() for e in error.errors]
    if isinstance(error, RequestBodyTooLarge):
        body["errors"] = [{"field": "body", "reason": f"larger than {error.limit} bytes"}]
    if isinstance(error, Unavailable | RateLimited):
        headers = {"Retry-After": str(error.retry_after)}
    if isinstance(error, Unauthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status_of(error), headers=headers)


def fhir_error_response(error: DrgwatchError) -> JSONResponse:
    """The answer to a domain error on the FHIR route: an OperationOutcome."""
    plain = error_response(error)
    status = plain.status_code
    body = (
        error.outcome
        if isinstance(error, FhirRefused)
        else outcome_of(error.message, status=status)
    )
    headers = {
        name: value
        for name, value in plain.headers.items()
        if name.lower() in ("retry-after", "www-authenticate")
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def invalid_request(errors: list[FieldError]) -> JSONResponse:
    return JSONResponse(
        {"detail": "the request is invalid", "errors": [e.model_dump() for e in errors]},
        status_code=422,
    )


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""

    @app.exception_handler(DrgwatchError)
    async def _domain_error(request: Request, error: DrgwatchError) -> JSONResponse:
        if request.url.path == FHIR_PATH:
            return fhir_error_response(error)
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return invalid_request(field_errors(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and error.detail == _BODY_PARSE_ERROR:
            return invalid_request([FieldError(field="body", reason="not valid UTF-8 JSON")])
        return JSONResponse(
            {"detail": str(error.detail)}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def _database_error(_: Request, error: Exception) -> JSONResponse:
        if not is_unavailable(error):
            log.error("database error: %s", type(error).__name__)
            return JSONResponse({"detail": "internal error"}, status_code=500)
        log.warning("database unavailable: %s", type(error).__name__)
        return error_response(DatabaseUnavailable())
