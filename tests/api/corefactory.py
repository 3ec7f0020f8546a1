"""Case states produced by the real cost core, for writing through the projector."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.casecost.apply import apply_event, new_case
from services.casecost.events import parse_event
from services.casecost.pricing import Catalogue, DrgGroup, PriceBook
from services.casecost.rules import CaseRules
from services.casecost.state import CaseState
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files

BASE_RATES = {"employee": Decimal("12252.70"), "resident": Decimal("9649.24")}
FM15_WEIGHT = Decimal("3.2973")
# 3.2973 x 12252.70 = 40400.827710 -> 40400.83
FM15_EMPLOYEE = Decimal("40400.83")

PRICE_BOOK = PriceBook(
    version=1,
    catalogues=(
        Catalogue(
            catalogue_id=1,
            name="test catalogue",
            effective_from=date(2026, 1, 1),
            base_rates=BASE_RATES,
            groups={
                "FM15": DrgGroup("FM15", "Coronary stent, no MCC", FM15_WEIGHT, Decimal("7.5")),
                "GB21": DrgGroup(
                    "GB21",
                    "Appendectomy",
                    Decimal("1"),
                    Decimal("4.0"),
                    standard_cost=Decimal("1000.00"),
                ),
            },
        ),
    ),
)

# the same, with the case rules drgwatch ships compiled in (as the worker runs them)
RULES_PRICE_BOOK = replace(
    PRICE_BOOK,
    case_rules=CaseRules.compile(load_rule_files(DEFAULT_RULES_DIR), PRICE_BOOK.zone),
)


@dataclass
class CaseBuilder:
    """Feeds events to one case through apply_event, with a clock that only moves on."""

    hospital_id: str
    case_id: str
    clock: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    state: CaseState | None = None
    counter: int = 0
    price_book: PriceBook = PRICE_BOOK

    def __post_init__(self) -> None:
        self.state = new_case(self.hospital_id, self.case_id)

    def _apply(self, raw: dict[str, Any]) -> list[dict[str, Any]]:
        self.counter += 1
        self.clock += timedelta(seconds=1)
        assert self.state is not None
        outcome = apply_event(self.state, parse_event(raw), self.price_book, self.clock)
        self.state = outcome.state
        return outcome.alerts

    def _base(self, kind: str, occurred_at: str) -> dict[str, Any]:
        return {
            "event_id": f"{self.case_id}-ev{self.counter + 1}",
            "type": kind,
            "hospital_id": self.hospital_id,
            "case_id": self.case_id,
            "occurred_at": occurred_at,
        }

    def admit(
        self,
        department: str = "CARD",
        drg_code: str | None = "FM15",
        scheme: str = "employee",
        at: str = "2026-03-02T08:00:00+08:00",
    ) -> CaseBuilder:
        event = self._base("admitted", at) | {
            "department": department,
            "insurance_scheme": scheme,
            "admitted_at": at,
        }
        if drg_code:
            event["drg_code"] = drg_code
        self._apply(event)
        return self

    def cost(
        self,
        amount: str,
        category: str = "drug",
        item_code: str = "D001",
        kind: str = "charge",
        department: str = "CARD",
        at: str = "2026-03-02T09:00:00+08:00",
        ordered_by: str | None = None,
        quantity: str = "1",
        item_name: str | None = None,
    ) -> CaseBuilder:
        """A charge (or credit) of `amount`: `quantity` at amount / quantity each."""
        self._apply(
            self._base(kind, at)
            | {
                "department": department,
                "item_code": item_code,
                "item_name": item_name or f"item {item_code}",
                "category": category,
                "quantity": quantity,
                "unit_price": str(Decimal(amount) / Decimal(quantity)),
                "amount": amount,
            }
            | ({} if ordered_by is None else {"ordered_by": ordered_by})
        )
        return self

    def transfer(self, department: str, at: str = "2026-03-03T10:00:00+08:00") -> CaseBuilder:
        self._apply(self._base("transferred", at) | {"department": department})
        return self

    def discharge(self, at: str = "2026-03-06T10:00:00+08:00") -> CaseBuilder:
        self._apply(self._base("discharged", at) | {"discharged_at": at})
        return self

    def cancel_discharge(self, at: str = "2026-03-06T12:00:00+08:00") -> CaseBuilder:
        self._apply(self._base("discharge_cancelled", at) | {"reason": "recorded by mistake"})
        return self

    def to_dict(self) -> dict[str, Any]:
        assert self.state is not None
        return self.state.to_dict()
