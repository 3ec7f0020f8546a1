"""The OpenAPI document as the service really answers.

FastAPI documents only the success response and its own validation error. This adds
the event contract that POST /v1/events takes, and the errors every operation can
give, in the one body shape the error handlers produce (`ErrorBody`): 422 naming the
fields, 413 for a body over the route's limit (limits.py), 400 for a cursor the service
did not issue or a Host it does not answer to, 404 for an absent (or out of scope)
resource, 503 with Retry-After when a dependency is down, 401 for a missing
(production) or wrong key, 429 with Retry-After once an address has sent too many wrong
keys, 403 where the caller's role does not allow the action, a signed-in change lacks
its CSRF token, or a web page of another origin sent the request, and 415 for a body
that is not JSON. `/v1/session` answers everyone and refuses only a sign-in.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from services.api.auth import OPEN_PATHS, SESSION_COOKIE, SESSION_PATH
from services.api.limits import body_limit
from services.casecost.events import EVENT_ADAPTER
from services.ingest.schemas import ItemResult
from services.validation import FieldError

ERROR_REF = "#/components/schemas/ErrorBody"
# operations that name one resource in their path answer 404 when it is absent or out of
# the caller's scope; these have a more precise description
NOT_FOUND = {
    ("get", "/v1/hospitals/{hospital_id}/cases/{case_id}"): "no such case in this hospital",
    ("post", "/v1/hospitals/{hospital_id}/cases/{case_id}/precheck"): "no such case",
    ("get", "/v1/drg-catalogues/current/groups/{drg_code}"): "no such group in force",
    ("get", "/v1/chargemasters/current/items/{item_code}"): (
        "no chargemaster valid that day, or no such item in it"
    ),
    ("get", "/v1/chargemaster/items/{item_code}"): (
        "no chargemaster valid that day, or no such item in it"
    ),
}
NO_DATABASE = {"/healthz"}


class ErrorBody(BaseModel):
    """Every error: what went wrong, and for invalid input each field with its reason."""

    detail: str
    errors: list[FieldError] = []
    results: list[ItemResult] | None = None  # POST /v1/events: per event, when a batch fails


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "schema": {"type": "integer"},
            }
        }
    return response


def build(app: FastAPI, *, production: bool) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    event = EVENT_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
    components.update(event.pop("$defs", {}))
    components["Event"] = event
    error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error.pop("$defs", {}))
    components["ErrorBody"] = error
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        # a person signed in with POST /v1/session; changes also need X-CSRF-Token
        "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
    }
    components["OperationOutcome"] = OPERATION_OUTCOME
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            _document_errors(path, method, operation, production=production)
            if path == FHIR_PATH:
                _document_fhir(operation)
    return document


FHIR_PATH = "/v1/fhir"
FHIR_JSON = "application/fhir+json"
OPERATION_OUTCOME: dict[str, Any] = {
    "type": "object",
    "description": "FHIR R4 OperationOutcome: each issue names the element (expression)",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def _document_fhir(operation: dict[str, Any]) -> None:
    """POST /v1/fhir answers its own refusals as OperationOutcomes (application/fhir+json);
    the guard's and the key check's refusals keep the common body."""
    responses: dict[str, Any] = operation["responses"]
    for status in ("400", "403", "413", "422", "503"):
        responses[status].setdefault("content", {})[FHIR_JSON] = {
            "schema": {"$ref": "#/components/schemas/OperationOutcome"}
        }
    responses["415"] = _error(
        "Content-Type: the body must be application/fhir+json or application/json"
    )
    for status in ("200", "201"):
        responses[status]["content"] = {
            FHIR_JSON: {"schema": {"type": "object", "required": ["resourceType"]}}
        }


def _document_errors(
    path: str, method: str, operation: dict[str, Any], *, production: bool
) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = {parameter["name"] for parameter in operation.get("parameters", [])}
    if parameters or "requestBody" in operation:
        described = responses.get("422", {}).get("description")
        responses["422"] = _error(described or "the request is invalid; each error names its field")
    if "cursor" in parameters:
        responses["400"] = _error(
            "cursor: not a cursor this service issued; or a Host this service does not answer"
        )
    else:
        responses["400"] = _error("Host: not a host this service answers to")
    if "requestBody" in operation:
        responses["415"] = _error("Content-Type: the body must be application/json")
    if "{" in path:
        responses["404"] = _error(
            NOT_FOUND.get((method, path), "not found, or outside the caller's scope")
        )
    if "409" in responses:
        responses["409"] = _error(responses["409"]["description"])
    if "requestBody" in operation:
        described = responses.get("413", {}).get("description")
        responses["413"] = _error(
            described or f"the body is larger than this route's limit of {body_limit(path)} bytes"
        )
    if path == "/readyz":
        responses["503"] = {
            "description": "not ready: the body says which check failed",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    elif path not in NO_DATABASE:
        described = responses.get("503", {}).get("description")
        responses["503"] = _error(
            described or "the database is unavailable; retry later", retry_after=True
        )
    if path == SESSION_PATH:
        # answers every caller: only a sign-in is refused (401, 429), a change without
        # the session's CSRF token (403)
        if method != "post":
            responses.pop("401", None)
            responses.pop("429", None)
        else:
            responses["401"] = _error(responses["401"]["description"])
            responses["429"] = _error(responses["429"]["description"], retry_after=True)
        responses["403"] = _error(
            "X-CSRF-Token: missing or not this session's, on a signed-in change; or a web"
            " page of another origin sent the request"
        )
        operation["security"] = [{"bearer": []}, {"apiKey": []}, {"session": []}, {}]
    elif path not in OPEN_PATHS:
        responses["401"] = _error(
            "a valid API key or a signed-in session is required"
            if production
            else "the API key is not valid (without a key or session, embedded mode acts as admin)"
        )
        responses["403"] = _error(
            "the caller's role does not allow this action; a signed-in change without the"
            " session's X-CSRF-Token; or a web page of another origin sent the request"
        )
        described = responses.get("429", {}).get("description")
        responses["429"] = _error(
            described or "too many wrong API keys from this address; retry after Retry-After",
            retry_after=True,
        )
        operation["security"] = [{"bearer": []}, {"apiKey": []}, {"session": []}]
        if not production:
            operation["security"].append({})
