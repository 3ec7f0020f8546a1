"""POST /v1/hospitals/{h}/cases/{c}/precheck: "if I order this, where does the case land,
and is there a cheaper equivalent?".

An item without `unit_price` (or `category`) takes it from the chargemaster valid today
for the hospital; an item given its price is costed at that price. Alternatives are the
items of the same equivalence group priced below the price used, each with where the
case would land with it in place of the proposed one. Nothing is written, and the
chargemaster is read from the charge book the API keeps in memory.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.access.principal import Principal
from services.api.cases import service as case_service
from services.api.deps import ChargeBookDep, PriceBookDep, SessionDep, TodayDep, require
from services.api.params import CaseId, HospitalId
from services.casecost.alternatives import Alternative, cheaper_alternatives
from services.casecost.chargemaster import Chargemaster, price_text
from services.casecost.events import Category, Code, Label, Quantity, UnitPrice
from services.casecost.forecast import Landing, ProposedItem, forecast
from services.reference.exceptions import UnpricedItems
from services.validation import FieldError

router = APIRouter(tags=["cases"])


class ProposedItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    item_code: Code
    item_name: Label | None = None
    category: Category | None = Field(
        default=None, description="absent: the chargemaster's category of the item"
    )
    quantity: Quantity
    unit_price: UnitPrice | None = Field(
        default=None,
        description="absent: the unit price of the item in the chargemaster valid today",
    )


class PrecheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[ProposedItemIn], Field(min_length=1, max_length=200)]


class LandingOut(BaseModel):
    total_cost: str
    ratio: str | None
    level: str


class AlternativeOut(BaseModel):
    item_code: str
    item_name: str
    unit_price: str
    saving: str = Field(description="the proposed item's amount less this one's, same quantity")
    landing: LandingOut = Field(
        description="the case with this item in place of the proposed one, the others kept"
    )


class PricedItemOut(BaseModel):
    item_code: str
    item_name: str | None
    category: str | None
    quantity: str
    unit_price: str
    amount: str
    price_source: str = Field(description="request: as given; chargemaster: looked up")
    equivalence_group: str | None
    alternatives: list[AlternativeOut] = Field(
        description="cheaper items of its equivalence group, cheapest first"
    )


class ChargemasterUsed(BaseModel):
    chargemaster_id: int
    name: str
    sample: bool


class PrecheckOut(BaseModel):
    hospital_id: str
    case_id: str
    drg_code: str | None
    standard_cost: str | None
    added_cost: str
    current: LandingOut
    projected: LandingOut
    crosses_level: bool
    headroom: dict[str, str] | None
    # where the case lands at discharge with the items ordered: its projection to
    # discharge plus their cost (null while the case cannot be projected)
    projected_at_discharge: LandingOut | None = None
    items: list[PricedItemOut] = Field(
        default_factory=list, description="each proposed item as priced, with its alternatives"
    )
    chargemaster: ChargemasterUsed | None = Field(
        default=None, description="the chargemaster valid today (null: none)"
    )


def _out(landing: Landing) -> LandingOut:
    return LandingOut(
        total_cost=str(landing.total_cost),
        ratio=None if landing.ratio is None else str(landing.ratio),
        level=landing.level,
    )


def price_items(
    proposed: list[ProposedItemIn], chargemaster: Chargemaster | None
) -> tuple[list[ProposedItem], list[PricedItemOut]]:
    """Each item with its price and category, from the request or else the chargemaster;
    UnpricedItems naming every item that has no price either way."""
    items: list[ProposedItem] = []
    priced: list[PricedItemOut] = []
    problems: list[FieldError] = []
    for index, item in enumerate(proposed):
        entry = None if chargemaster is None else chargemaster.items.get(item.item_code)
        if item.unit_price is not None:
            unit_price = item.unit_price
        elif entry is not None:
            unit_price = entry.unit_price
        else:
            where = (
                "no chargemaster is valid today"
                if chargemaster is None
                else f"it is not in chargemaster {chargemaster.chargemaster_id}, valid today"
            )
            problems.append(
                FieldError(
                    field=f"items.{index}.unit_price",
                    reason=f"item {item.item_code} has no unit_price and {where}",
                )
            )
            continue
        category = item.category or (None if entry is None else entry.category)
        proposed_item = ProposedItem(item.item_code, item.quantity, unit_price)
        items.append(proposed_item)
        priced.append(
            PricedItemOut(
                item_code=item.item_code,
                item_name=item.item_name or (None if entry is None else entry.name),
                category=None if category is None else str(category),
                quantity=str(item.quantity),
                unit_price=price_text(unit_price),
                amount=str(proposed_item.amount),
                price_source="request" if item.unit_price is not None else "chargemaster",
                equivalence_group=None if entry is None else entry.equivalence_group,
                alternatives=[],
            )
        )
    if problems:
        raise UnpricedItems("items without a price", problems)
    return items, priced


def _alternative_out(alternative: Alternative) -> AlternativeOut:
    return AlternativeOut(
        item_code=alternative.item.item_code,
        item_name=alternative.item.name,
        unit_price=price_text(alternative.item.unit_price),
        saving=str(alternative.saving),
        landing=_out(alternative.landing),
    )


@router.post(
    "/v1/hospitals/{hospital_id}/cases/{case_id}/precheck",
    response_model=PrecheckOut,
    responses={
        422: {
            "description": "an item is invalid, or has no unit_price and the chargemaster"
            " valid today does not hold it: each error names the item's field"
        }
    },
)
async def precheck(
    hospital_id: HospitalId,
    case_id: CaseId,
    proposal: PrecheckIn,
    db_session: SessionDep,
    caller: Annotated[Principal, Depends(require("cases:precheck"))],
    price_book: PriceBookDep,
    charge_book: ChargeBookDep,
    today: TodayDep,
) -> PrecheckOut:
    """Project the case's total, ratio and level with the proposed items added; for each
    item in an equivalence group, the cheaper equivalents and where each would land."""
    record = await case_service.get_record(
        db_session=db_session, caller=caller, hospital_id=hospital_id, case_id=case_id
    )
    chargemaster = charge_book.in_force(hospital_id, today)
    items, priced = price_items(proposal.items, chargemaster)
    thresholds = price_book.thresholds_for(hospital_id, record.drg_code)
    result = forecast(record.total_cost, record.standard_cost, thresholds, items)
    alternatives = cheaper_alternatives(
        total=record.total_cost,
        standard=record.standard_cost,
        thresholds=thresholds,
        items=items,
        chargemaster=chargemaster,
    )
    for item, found in zip(priced, alternatives, strict=True):
        item.alternatives = [_alternative_out(alternative) for alternative in found]
    at_discharge = (
        None
        if record.projected_total is None
        else forecast(record.projected_total, record.standard_cost, thresholds, items).projected
    )
    return PrecheckOut(
        hospital_id=hospital_id,
        case_id=case_id,
        drg_code=record.drg_code,
        standard_cost=None if record.standard_cost is None else str(record.standard_cost),
        added_cost=str(result.added_cost),
        current=_out(result.current),
        projected=_out(result.projected),
        crosses_level=result.current.level != result.projected.level,
        headroom=None
        if result.headroom is None
        else {level: str(amount) for level, amount in result.headroom.items()},
        projected_at_discharge=None if at_discharge is None else _out(at_discharge),
        items=priced,
        chargemaster=None
        if chargemaster is None
        else ChargemasterUsed(
            chargemaster_id=chargemaster.chargemaster_id,
            name=chargemaster.name,
            sample=chargemaster.sample,
        ),
    )
