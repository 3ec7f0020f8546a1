"""Errors of reference data (DRG catalogues, thresholds, monitoring rules).

ReferenceDataError
 ├── GroupNotInForce      a DRG that the catalogue in force does not hold   (NotFound)
 ├── UnknownCatalogue     no such catalogue, or one outside the caller's scope (NotFound)
 ├── UnknownThresholds    no thresholds set for that hospital and DRG       (NotFound)
 ├── AlreadyWithdrawn     a catalogue withdrawn before                      (Conflict)
 ├── CatalogueRefused     an import that would price cases wrongly         (Invalid)
 └── RuleFilesRefused     rule files that do not validate, every problem   (Invalid)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from services.errors import Conflict, DrgwatchError, Invalid, NotFound

if TYPE_CHECKING:
    from services.reference.rules import RuleProblem


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


class RuleFilesRefused(ReferenceDataError, Invalid):
    """Rule files with problems: `problems` lists every one (file, line, rule, field)."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = list(problems)
