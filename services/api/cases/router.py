"""Case state endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from services.access.principal import Principal
from services.api.cases import service as case_service
from services.api.cases.schemas import CaseList, CaseOut
from services.api.deps import SessionDep, require
from services.api.params import CaseId, Cursor, DepartmentFilter, HospitalId

router = APIRouter(tags=["cases"])
CaseReader = Annotated[Principal, Depends(require("cases:read"))]


@router.get("/v1/hospitals/{hospital_id}/cases/{case_id}", response_model=CaseOut)
async def get_case(
    hospital_id: HospitalId, case_id: CaseId, db_session: SessionDep, caller: CaseReader
) -> CaseOut:
    """Live state of one case: DRG, standard, total, ratio, level, cost by category."""
    return await case_service.get(
        db_session=db_session, caller=caller, hospital_id=hospital_id, case_id=case_id
    )


@router.get("/v1/hospitals/{hospital_id}/cases", response_model=CaseList)
async def list_cases(
    hospital_id: HospitalId,
    db_session: SessionDep,
    caller: CaseReader,
    department: DepartmentFilter = None,
    level: Annotated[
        str | None,
        Query(pattern=r"^(unpriced|none|blue|yellow|red)(,(unpriced|none|blue|yellow|red))*$"),
    ] = None,
    status: Literal["open", "discharged"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Cursor = None,
) -> CaseList:
    """Cases of a hospital, by case id, filtered by department, level (comma list), status."""
    return await case_service.list_cases(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        department=department,
        level=level,
        status=status,
        limit=limit,
        cursor=cursor,
    )
