"""Errors of reference data (DRG catalogues, thresholds).

ReferenceDataError
 ├── GroupNotInForce      a DRG that the catalogue in force does not hold   (NotFound)
 ├── UnknownCatalogue     no such catalogue, or one outside the caller's scope (NotFound)
 ├── UnknownThresholds    no thresholds set for that hospital and DRG       (NotFound)
 ├── AlreadyWithdrawn     a catalogue withdrawn before                      (Conflict)
 └── CatalogueRefused     an import that would price cases wrongly         (Invalid)
"""

from __future__ import annotations

from services.errors import Conflict, DrgwatchError, Invalid, NotFound


class ReferenceDataError(DrgwatchError):
    pass


class GroupNotInForce(ReferenceDataError, NotFound):
    pass


class UnknownCatalogue(ReferenceDataError, NotFound):
    pass


class UnknownThresholds(ReferenceDataError, NotFound):
    pass


class AlreadyWithdrawn(ReferenceDataError, Conflict):
    pass


class CatalogueRefused(ReferenceDataError, Invalid):
    pass
