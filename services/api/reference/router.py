"""DRG catalogues and alert thresholds (reference data)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from services.access.exceptions import NotPermitted
from services.access.principal import ALL_HOSPITALS, Principal
from services.api.deps import SessionDep, TodayDep, ZoneDep, forget_reference, require
from services.api.openapi import ErrorBody
from services.casecost.events import Code, Identifier
from services.reference import service as catalogue_service
from services.reference import thresholds as threshold_service
from services.reference.schemas import (
    CatalogueDetail,
    CatalogueIn,
    CatalogueList,
    DrgScope,
    GroupOut,
    HospitalScope,
    ImportReport,
    ThresholdList,
    ThresholdsIn,
    ThresholdsOut,
    WithdrawalReport,
    WithdrawIn,
)
from services.reference.service import Visible

router = APIRouter(tags=["reference data"])
ReferenceReader = Annotated[Principal, Depends(require("reference:read"))]
ReferenceWriter = Annotated[Principal, Depends(require("reference:write"))]
CatalogueId = Annotated[int, Path(ge=1, le=2**63 - 1)]
HospitalFilter = Annotated[HospitalScope | None, Query()]
DrgFilter = Annotated[DrgScope | None, Query()]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=512)]


def check_hospital(caller: Principal, hospital_id: str) -> None:
    """Reference data for every hospital ('*') needs a caller who sees every hospital."""
    allowed = (
        caller.all_hospitals if hospital_id == ALL_HOSPITALS else caller.sees_hospital(hospital_id)
    )
    if not allowed:
        raise NotPermitted(
            f"hospital_id: this credential may not change reference data of {hospital_id!r}"
        )


def visible_to(caller: Principal) -> Visible:
    return None if caller.all_hospitals else caller.hospitals


@router.post(
    "/v1/drg-catalogues",
    status_code=201,
    response_model=ImportReport,
    responses={
        200: {"model": ImportReport, "description": "a dry run: what it would do, nothing stored"}
    },
)
async def import_catalogue(
    request: Request,
    catalogue_in: CatalogueIn,
    db_session: SessionDep,
    caller: ReferenceWriter,
    today: TodayDep,
    zone: ZoneDep,
    response: Response,
) -> ImportReport:
    """Import a catalogue version (`mode` full, amend or replace; `dry_run` to see what
    it would do): says which catalogue prices cases admitted today and how many open
    cases are priced again or left unpriced; workers price open cases again against it."""
    check_hospital(caller, catalogue_in.hospital_id or ALL_HOSPITALS)
    report = await catalogue_service.import_catalogue(
        db_session=db_session,
        catalogue_in=catalogue_in,
        today=today,
        zone=zone,
        imported_by=caller.name,
    )
    if catalogue_in.dry_run:
        response.status_code = 200
    else:
        await db_session.commit()
        forget_reference(request.app)
    return report


@router.get("/v1/drg-catalogues", response_model=CatalogueList)
async def list_catalogues(
    db_session: SessionDep,
    caller: ReferenceReader,
    today: TodayDep,
    hospital_id: HospitalFilter = None,
    withdrawn: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CatalogueList:
    """Catalogue versions, newest first, each marked sample, withdrawn, in force today."""
    return await catalogue_service.list_catalogues(
        db_session=db_session,
        today=today,
        hospitals=visible_to(caller),
        hospital_id=hospital_id,
        withdrawn=withdrawn,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/v1/drg-catalogues/current",
    response_model=CatalogueDetail,
    responses={404: {"model": ErrorBody, "description": "no catalogue is in force today"}},
)
async def get_current_catalogue(
    db_session: SessionDep,
    caller: ReferenceReader,
    today: TodayDep,
    hospital_id: HospitalFilter = None,
    limit: Limit = 500,
    cursor: Cursor = None,
) -> CatalogueDetail:
    """The catalogue that prices cases admitted today (the hospital's local day)."""
    return await catalogue_service.get_current_catalogue(
        db_session=db_session,
        today=today,
        hospital_id=hospital_id,
        hospitals=visible_to(caller),
        limit=limit,
        cursor=cursor,
    )


@router.get("/v1/drg-catalogues/current/groups/{drg_code}", response_model=GroupOut)
async def get_current_group(
    drg_code: Annotated[Code, Path()],
    db_session: SessionDep,
    caller: ReferenceReader,
    today: TodayDep,
    hospital_id: Annotated[Identifier | None, Query()] = None,
    on: date | None = None,
) -> GroupOut:
    """A DRG group in the catalogue in force today (the hospital's local day) or `on`."""
    return await catalogue_service.get_current_group(
        db_session=db_session,
        drg_code=drg_code,
        hospital_id=hospital_id,
        on=on or today,
        hospitals=visible_to(caller),
    )


@router.get("/v1/drg-catalogues/{catalogue_id}", response_model=CatalogueDetail)
async def get_catalogue(
    catalogue_id: CatalogueId,
    db_session: SessionDep,
    caller: ReferenceReader,
    today: TodayDep,
    limit: Limit = 500,
    cursor: Cursor = None,
) -> CatalogueDetail:
    """A catalogue version with its groups (by code, paginated), withdrawn ones too."""
    return await catalogue_service.get_catalogue(
        db_session=db_session,
        catalogue_id=catalogue_id,
        today=today,
        hospitals=visible_to(caller),
        limit=limit,
        cursor=cursor,
    )


@router.post(
    "/v1/drg-catalogues/{catalogue_id}/withdraw",
    response_model=WithdrawalReport,
    responses={409: {"model": ErrorBody, "description": "withdrawn before: the detail says when"}},
)
async def withdraw_catalogue(
    request: Request,
    catalogue_id: CatalogueId,
    db_session: SessionDep,
    caller: ReferenceWriter,
    today: TodayDep,
    zone: ZoneDep,
    withdraw_in: WithdrawIn | None = None,
) -> WithdrawalReport:
    """Take a catalogue out of force for good (kept as history); workers price open cases
    again. `dry_run` reports what it would do."""
    withdraw_in = withdraw_in or WithdrawIn()
    report = await catalogue_service.withdraw(
        db_session=db_session,
        catalogue_id=catalogue_id,
        today=today,
        zone=zone,
        hospitals=visible_to(caller),
        authorize=lambda hospital_id: check_hospital(caller, hospital_id or ALL_HOSPITALS),
        withdrawn_by=caller.name,
        reason=withdraw_in.reason,
        dry_run=withdraw_in.dry_run,
    )
    if not withdraw_in.dry_run:
        await db_session.commit()
        forget_reference(request.app)
    return report


@router.get("/v1/alert-thresholds", response_model=ThresholdList)
async def list_thresholds(
    db_session: SessionDep,
    caller: ReferenceReader,
    hospital_id: HospitalFilter = None,
    drg_code: DrgFilter = None,
    limit: Limit = 200,
    cursor: Cursor = None,
) -> ThresholdList:
    """Thresholds set per hospital and DRG ('*' = any), and the default where none is."""
    return await threshold_service.list_thresholds(
        db_session=db_session,
        hospitals=visible_to(caller),
        hospital_id=hospital_id,
        drg_code=drg_code,
        limit=limit,
        cursor=cursor,
    )


@router.put("/v1/alert-thresholds", response_model=ThresholdsOut)
async def put_thresholds(
    request: Request, thresholds: ThresholdsIn, db_session: SessionDep, caller: ReferenceWriter
) -> ThresholdsOut:
    """Set level thresholds for a hospital and/or DRG ('*' for any); open cases re-level."""
    check_hospital(caller, thresholds.hospital_id)
    stored = await threshold_service.set_thresholds(db_session=db_session, thresholds=thresholds)
    await db_session.commit()
    forget_reference(request.app)
    return stored


@router.delete(
    "/v1/alert-thresholds",
    response_model=ThresholdsOut,
    responses={404: {"model": ErrorBody, "description": "no thresholds set for these two"}},
)
async def delete_thresholds(
    request: Request,
    db_session: SessionDep,
    caller: ReferenceWriter,
    hospital_id: Annotated[HospitalScope, Query()],
    drg_code: Annotated[DrgScope, Query()],
) -> ThresholdsOut:
    """Remove the thresholds of a hospital and DRG (both named, '*' for any); the next
    most specific ones, or the default, apply again and open cases re-level."""
    check_hospital(caller, hospital_id)
    removed = await threshold_service.remove_thresholds(
        db_session=db_session, hospital_id=hospital_id, drg_code=drg_code
    )
    await db_session.commit()
    forget_reference(request.app)
    return removed
