"""Errors of reference data (DRG catalogues, thresholds).

ReferenceDataError
 ├── GroupNotInForce      a DRG that the catalogue in force does not hold   (NotFound)
 └── CatalogueRefused     an import that would price cases wrongly         (Invalid)
"""

from __future__ import annotations

from services.errors import DrgwatchError, Invalid, NotFound


class ReferenceDataError(DrgwatchError):
    pass


class GroupNotInForce(ReferenceDataError, NotFound):
    pass


class CatalogueRefused(ReferenceDataError, Invalid):
    pass
