"""POST /v1/hospitals/{h}/cases/{c}/precheck: "if I order this, where does the case land?"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.access.principal import Principal
from services.api.cases import service as case_service
from services.api.deps import PriceBookDep, SessionDep, require
from services.api.params import CaseId, HospitalId
from services.casecost.events import Category, Code, Label, Quantity, UnitPrice
from services.casecost.forecast import Landing, ProposedItem, forecast

router = APIRouter(tags=["cases"])


class ProposedItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    item_code: Code
    item_name: Label | None = None
    category: Category | None = None
    quantity: Quantity
    unit_price: UnitPrice


class PrecheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[ProposedItemIn], Field(min_length=1, max_length=200)]


class LandingOut(BaseModel):
    total_cost: str
    ratio: str | None
    level: str


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


def _out(landing: Landing) -> LandingOut:
    return LandingOut(
        total_cost=str(landing.total_cost),
        ratio=None if landing.ratio is None else str(landing.ratio),
        level=landing.level,
    )


@router.post("/v1/hospitals/{hospital_id}/cases/{case_id}/precheck", response_model=PrecheckOut)
async def precheck(
    hospital_id: HospitalId,
    case_id: CaseId,
    proposal: PrecheckIn,
    db_session: SessionDep,
    caller: Annotated[Principal, Depends(require("cases:precheck"))],
    price_book: PriceBookDep,
) -> PrecheckOut:
    """Project the case's total, ratio and level with the proposed items added."""
    record = await case_service.get_record(
        db_session=db_session, caller=caller, hospital_id=hospital_id, case_id=case_id
    )
    thresholds = price_book.thresholds_for(hospital_id, record.drg_code)
    items = [ProposedItem(i.item_code, i.quantity, i.unit_price) for i in proposal.items]
    result = forecast(record.total_cost, record.standard_cost, thresholds, items)
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
    )
