"""Case state endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from services.access.principal import Principal
from services.api.cases import service as case_service
from services.api.cases.schemas import CaseDetail, CaseList, CaseOrder, OpenCasesSummary
from services.api.deps import (
    NowDep,
    PriceBookDep,
    SessionDep,
    TypicalMixesDep,
    ZoneDep,
    require,
)
from services.api.params import CaseId, Cursor, DepartmentFilter, HospitalId

router = APIRouter(tags=["cases"])
CaseReader = Annotated[Principal, Depends(require("cases:read"))]


@router.get("/v1/hospitals/{hospital_id}/cases/{case_id}", response_model=CaseDetail)
async def get_case(
    hospital_id: HospitalId,
    case_id: CaseId,
    db_session: SessionDep,
    caller: CaseReader,
    price_book: PriceBookDep,
    typical_mixes: TypicalMixesDep,
    now: NowDep,
    zone: ZoneDep,
) -> CaseDetail:
    """Live state of one case: DRG, standard, total, ratio, level, cost by category, the
    projection to discharge, the thresholds in force, cost per day and per orderer, and
    the explanation of its cost (against its DRG's typical mix in the hospital)."""
    return await case_service.get(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        case_id=case_id,
        price_book=price_book,
        typical_mixes=typical_mixes,
        now=now,
        zone=zone,
    )


@router.get("/v1/hospitals/{hospital_id}/cases", response_model=CaseList)
async def list_cases(
    hospital_id: HospitalId,
    db_session: SessionDep,
    caller: CaseReader,
    now: NowDep,
    price_book: PriceBookDep,
    department: DepartmentFilter = None,
    level: Annotated[
        str | None,
        Query(pattern=r"^(unpriced|none|blue|yellow|red)(,(unpriced|none|blue|yellow|red))*$"),
    ] = None,
    status: Literal["open", "discharged"] | None = None,
    order: Annotated[
        CaseOrder | None,
        Query(description="sort descending by this (nulls last); by case id when absent"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> CaseList:
    """Cases of a hospital, filtered by department, level (comma list), status; by case id,
    or by `order` (ratio, projected_ratio, days_over_avg_stay, total_cost) descending."""
    return await case_service.list_cases(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        department=department,
        level=level,
        status=status,
        order=order,
        limit=limit,
        cursor=cursor,
        now=now,
        price_book=price_book,
    )


@router.get("/v1/hospitals/{hospital_id}/open-cases/summary", response_model=OpenCasesSummary)
async def open_cases_summary(
    hospital_id: HospitalId,
    db_session: SessionDep,
    caller: CaseReader,
    department: DepartmentFilter = None,
) -> OpenCasesSummary:
    """Open cases by level, the money already over standard, and departments ranked by
    the overspend their open cases are projected to reach at discharge."""
    return await case_service.open_cases_summary(
        db_session=db_session, caller=caller, hospital_id=hospital_id, department=department
    )
