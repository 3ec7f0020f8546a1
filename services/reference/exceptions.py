"""Errors of reference data (DRG catalogues, thresholds, monitoring rules).

ReferenceDataError
 ├── GroupNotInForce      a DRG that the catalogue in force does not hold   (NotFound)
 ├── UnknownCatalogue     no such catalogue, or one outside the caller's scope (NotFound)
 ├── UnknownThresholds    no thresholds set for that hospital and DRG       (NotFound)
 ├── AlreadyWithdrawn     a catalogue withdrawn before                      (Conflict)
 ├── CatalogueRefused     an import that would price cases wrongly         (Invalid)
 ├── RuleFilesRefused     rule files that do not validate or import, every problem (Invalid)
 ├── RuleRefused          a rule written to the API that does not validate  (Invalid)
 ├── UnknownRule          no such rule in the registry                      (NotFound)
 ├── NoChargemaster       no chargemaster valid on that day for that scope  (NotFound)
 ├── ChargeItemNotInForce an item the chargemaster valid then does not hold (NotFound)
 ├── ChargemasterRefused  a chargemaster import with bad items, every one   (Invalid)
 └── UnpricedItems        proposed items without a price or a category, and
                          none in the chargemaster valid today              (Invalid)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from services.errors import Conflict, DrgwatchError, Invalid, NotFound

if TYPE_CHECKING:
    from services.reference.rules import RuleProblem
    from services.validation import FieldError


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


class RuleRefused(ReferenceDataError, Invalid):
    """A rule written to the API that does not validate: `errors` names each field."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__(
            "the rule is invalid: " + "; ".join(f"{e.field}: {e.reason}" for e in errors)
        )
        self.errors = list(errors)


class UnknownRule(ReferenceDataError, NotFound):
    pass


class NoChargemaster(ReferenceDataError, NotFound):
    pass


class ChargeItemNotInForce(ReferenceDataError, NotFound):
    pass


class _FieldsRefused(ReferenceDataError, Invalid):
    """Refused with every field named: `errors` lists them (a CSV line is `line N.field`)."""

    def __init__(self, message: str, errors: Sequence[FieldError]) -> None:
        super().__init__(
            f"{message}: "
            + "; ".join(f"{e.field}: {e.reason}" for e in errors[:20])
            + (f"; and {len(errors) - 20} more" if len(errors) > 20 else "")
        )
        self.errors = list(errors)


class ChargemasterRefused(_FieldsRefused):
    pass


class UnpricedItems(_FieldsRefused):
    pass
