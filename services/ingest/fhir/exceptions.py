"""Errors of the FHIR intake (part of the ingest service's hierarchy).

PayloadRejected (services/ingest/exceptions.py)
 └── FhirRefused           the submission is refused as a whole; `outcome` is the
      │                    OperationOutcome to answer with                  (Invalid, 422)
      └── FhirUnreadable   not JSON, not a FHIR resource, or a resource type or Bundle
                           type this endpoint does not take                 (Malformed, 400)
"""

from __future__ import annotations

from typing import Any

from services.errors import Malformed
from services.ingest.exceptions import PayloadRejected
from services.storage.models import DeadLetter
from services.validation import FieldError


class FhirRefused(PayloadRejected):
    """`letters`: the dead letters that keep what was refused and why; the caller writes
    them after rolling back whatever the submission had started."""

    def __init__(
        self,
        message: str,
        *,
        outcome: dict[str, Any],
        errors: list[FieldError],
        letters: list[DeadLetter],
    ) -> None:
        super().__init__(message, errors=errors)
        self.outcome = outcome
        self.letters = letters


class FhirUnreadable(FhirRefused, Malformed):
    pass
