"""The chargemaster: import a version, list versions, list and search items, one item.

Items are read from the charge book the API keeps in memory (ChargeBookDep), so these
reads cost one query: whether a new version came in.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from services.access.principal import ALL_HOSPITALS, Principal
from services.api.deps import ChargeBookDep, SessionDep, TodayDep, forget_reference, require
from services.api.openapi import ErrorBody
from services.api.reference.router import HospitalFilter, check_hospital, visible_to
from services.casecost.events import Category, Code, Identifier
from services.reference.chargemaster import service as chargemaster_service
from services.reference.chargemaster.schemas import (
    ChargeItemDetail,
    ChargeItemPage,
    ChargemasterIn,
    ChargemasterList,
    ImportReport,
)

router = APIRouter(tags=["reference data"])
ReferenceReader = Annotated[Principal, Depends(require("reference:read"))]
ReferenceWriter = Annotated[Principal, Depends(require("reference:write"))]
ItemHospital = Annotated[
    Identifier | None,
    Query(description="the chargemaster valid for this hospital (none: the shared one)"),
]
On = Annotated[date | None, Query(description="valid on this day (default: today)")]
NO_CHARGEMASTER: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no chargemaster valid that day"}
}


@router.post("/v1/chargemasters", status_code=201, response_model=ImportReport)
async def import_chargemaster(
    request: Request,
    chargemaster_in: ChargemasterIn,
    db_session: SessionDep,
    caller: ReferenceWriter,
    today: TodayDep,
) -> ImportReport:
    """Import a chargemaster version, valid from `valid_from` (earlier versions stay and
    keep pricing the days before it); says which version prices today's pre-checks."""
    check_hospital(caller, chargemaster_in.hospital_id or ALL_HOSPITALS)
    report = await chargemaster_service.import_chargemaster(
        db_session=db_session,
        chargemaster_in=chargemaster_in,
        today=today,
        imported_by=caller.name,
    )
    await db_session.commit()
    forget_reference(request.app)
    return report


@router.get("/v1/chargemasters", response_model=ChargemasterList)
async def list_chargemasters(
    db_session: SessionDep,
    caller: ReferenceReader,
    today: TodayDep,
    hospital_id: HospitalFilter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ChargemasterList:
    """Chargemaster versions, newest first, each marked sample and valid today."""
    return await chargemaster_service.list_chargemasters(
        db_session=db_session,
        today=today,
        hospitals=visible_to(caller),
        hospital_id=hospital_id,
        limit=limit,
        cursor=cursor,
    )


@router.get("/v1/chargemaster", response_model=ChargeItemPage, responses=NO_CHARGEMASTER)
@router.get(
    "/v1/chargemasters/current/items", response_model=ChargeItemPage, responses=NO_CHARGEMASTER
)
async def list_items(
    book: ChargeBookDep,
    caller: ReferenceReader,
    today: TodayDep,
    hospital_id: ItemHospital = None,
    on: On = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="in the code or a name, any case"),
    ] = None,
    category: Category | None = None,
    equivalence_group: Annotated[Code | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ChargeItemPage:
    """Items of the chargemaster valid today (or `on`), by code, searched and filtered."""
    return chargemaster_service.list_items(
        book=book,
        hospital_id=hospital_id,
        on=on or today,
        hospitals=visible_to(caller),
        search=q,
        category=None if category is None else str(category),
        equivalence_group=equivalence_group,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/v1/chargemaster/items/{item_code}",
    response_model=ChargeItemDetail,
    responses=NO_CHARGEMASTER,
)
@router.get(
    "/v1/chargemasters/current/items/{item_code}",
    response_model=ChargeItemDetail,
    responses=NO_CHARGEMASTER,
)
async def get_item(
    item_code: Annotated[Code, Path()],
    book: ChargeBookDep,
    caller: ReferenceReader,
    today: TodayDep,
    hospital_id: ItemHospital = None,
    on: On = None,
) -> ChargeItemDetail:
    """An item of the chargemaster valid today (or `on`), with its equivalents."""
    return chargemaster_service.get_item(
        book=book,
        hospital_id=hospital_id,
        item_code=item_code,
        on=on or today,
        hospitals=visible_to(caller),
    )
