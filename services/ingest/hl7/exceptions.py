"""Errors of reading HL7 v2 (part of the ingest service's errors).

IngestError
 └── Hl7Error
      ├── Hl7Unreadable    the bytes are not HL7 v2 ER7 (no MSH, bad charset, a batch cut
      │                    short); a PayloadRejected, so it is answered and kept like one
      └── ProfilesRefused  a facility profile file is invalid, naming the file and the field
"""

from __future__ import annotations

from services.errors import Invalid
from services.ingest.exceptions import IngestError, PayloadRejected
from services.validation import FieldError


class Hl7Error(IngestError):
    pass


class Hl7Unreadable(Hl7Error, PayloadRejected):
    def __init__(self, message: str) -> None:
        super().__init__(message, errors=[FieldError(field="body", reason=message)])


class ProfilesRefused(Hl7Error, Invalid):
    pass
