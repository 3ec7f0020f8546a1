"""Indicators, hospitals, departments, department targets and daily alert counts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.exceptions import RequestValidationError

from services.access.principal import Principal
from services.api.deps import NowDep, PriceBookDep, SessionDep, TodayDep, ZoneDep, require
from services.api.indicators import service as indicator_service
from services.api.indicators import targets as target_service
from services.api.indicators.schemas import (
    DailyAlertList,
    DepartmentIn,
    DepartmentList,
    DepartmentOut,
    HospitalList,
    IndicatorReport,
    ProgressReport,
    TargetIn,
    TargetList,
    TargetOut,
)
from services.api.params import DepartmentFilter, HospitalId
from services.casecost.events import CharacterRule, Code
from services.casecost.targets import PERIOD_PATTERN, PERIOD_RULE, Period, parse_period

router = APIRouter(tags=["indicators"])
Reader = Annotated[Principal, Depends(require("cases:read"))]
Writer = Annotated[Principal, Depends(require("reference:write"))]
DepartmentCode = Annotated[Code, Path(description="the department's code, as cases carry it")]
PeriodText = Annotated[
    str, Path(pattern=PERIOD_PATTERN, description=PERIOD_RULE), CharacterRule(PERIOD_RULE)
]
PeriodFilter = Annotated[
    str | None, Query(pattern=PERIOD_PATTERN, description=PERIOD_RULE), CharacterRule(PERIOD_RULE)
]
DrgFilter = Annotated[Code | None, Query()]
# the days a database can store and a previous period can start on
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)
MAX_PERIOD_DAYS = 366


def _refused(field: str, reason: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", field), "msg": reason, "type": "value_error"}])


def period_of(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """`from` and `to` as asked; without them, the current local month so far (without
    `from`: the first of `to`'s month; without `to`: today, or `from` if it is later)."""
    last = last or max(today, first or today)
    first = first or last.replace(day=1)
    for field, day in (("from", first), ("to", last)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise _refused(field, f"must be between {FIRST_DAY} and {LAST_DAY}")
    if first > last:
        raise _refused("to", "must not be before from")
    if (last - first) >= timedelta(days=MAX_PERIOD_DAYS):
        raise _refused("to", f"the period must not be longer than {MAX_PERIOD_DAYS} days")
    return first, last


def _period(text: str, field: str, where: str = "path") -> Period:
    try:
        return parse_period(text)
    except ValueError as error:
        raise RequestValidationError(
            [{"loc": (where, field), "msg": str(error), "type": "value_error"}]
        ) from None


@router.get("/v1/hospitals/{hospital_id}/indicators", response_model=IndicatorReport)
async def indicators(
    hospital_id: HospitalId,
    caller: Reader,
    db_session: SessionDep,
    price_book: PriceBookDep,
    zone: ZoneDep,
    today: TodayDep,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    department: DepartmentFilter = None,
    drg_code: DrgFilter = None,
    group_by: Literal["department", "drg"] | None = None,
) -> IndicatorReport:
    """CMI, consumption indices, budget execution, surplus, shares, high/low-ratio cases
    and cost per case of the discharged, priced cases of local days `from` to `to`."""
    first, last = period_of(from_, to, today)
    return await indicator_service.report(
        db_session=db_session,
        caller=caller,
        price_book=price_book,
        zone=zone,
        hospital_id=hospital_id,
        first=first,
        last=last,
        department=department,
        drg_code=drg_code,
        group_by=group_by,
    )


@router.get("/v1/hospitals", response_model=HospitalList)
async def hospitals(caller: Reader, db_session: SessionDep) -> HospitalList:
    """The hospitals in the caller's scope that have cases or reference data."""
    return await indicator_service.hospitals(db_session=db_session, caller=caller)


@router.get("/v1/hospitals/{hospital_id}/departments", response_model=DepartmentList)
async def departments(
    hospital_id: HospitalId, caller: Reader, db_session: SessionDep
) -> DepartmentList:
    """Every department code seen in the cases, and every named one, with its names."""
    return await target_service.departments(
        db_session=db_session, caller=caller, hospital_id=hospital_id
    )


@router.put("/v1/hospitals/{hospital_id}/departments/{department}", response_model=DepartmentOut)
async def name_department(
    hospital_id: HospitalId,
    department: DepartmentCode,
    names: DepartmentIn,
    caller: Writer,
    db_session: SessionDep,
    now: NowDep,
) -> DepartmentOut:
    """Name a department in Chinese and English."""
    named = await target_service.name_department(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        code=department,
        names=names,
        now=now,
    )
    await db_session.commit()
    return named


@router.get("/v1/hospitals/{hospital_id}/targets", response_model=TargetList)
async def list_targets(
    hospital_id: HospitalId,
    caller: Reader,
    db_session: SessionDep,
    period: PeriodFilter = None,
    department: DepartmentFilter = None,
) -> TargetList:
    """The departments' targets, by department and period."""
    return await target_service.list_targets(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        period=period,
        department=department,
    )


@router.get("/v1/hospitals/{hospital_id}/targets/progress", response_model=ProgressReport)
async def target_progress(
    hospital_id: HospitalId,
    caller: Reader,
    db_session: SessionDep,
    zone: ZoneDep,
    today: TodayDep,
    period: PeriodFilter = None,
    department: DepartmentFilter = None,
) -> ProgressReport:
    """Progress against each department's targets for the period (default: this month):
    actual so far, projected to the period's end at the pace so far, pace per measure."""
    chosen = _period(period, "period", "query") if period else parse_period(f"{today:%Y-%m}")
    return await target_service.progress(
        db_session=db_session,
        caller=caller,
        zone=zone,
        today=today,
        hospital_id=hospital_id,
        period=chosen,
        department=department,
    )


@router.put("/v1/hospitals/{hospital_id}/targets/{department}/{period}", response_model=TargetOut)
async def set_target(
    hospital_id: HospitalId,
    department: DepartmentCode,
    period: PeriodText,
    target: TargetIn,
    caller: Writer,
    db_session: SessionDep,
    now: NowDep,
) -> TargetOut:
    """Set or adjust a department's targets for a year (`2026`) or a month (`2026-12`)."""
    stored = await target_service.set_target(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        department=department,
        period=_period(period, "period"),
        target=target,
        now=now,
    )
    await db_session.commit()
    return stored


@router.delete("/v1/hospitals/{hospital_id}/targets/{department}/{period}", status_code=204)
async def delete_target(
    hospital_id: HospitalId,
    department: DepartmentCode,
    period: PeriodText,
    caller: Writer,
    db_session: SessionDep,
) -> Response:
    """Remove a department's targets for a period."""
    await target_service.delete_target(
        db_session=db_session,
        caller=caller,
        hospital_id=hospital_id,
        department=department,
        period=period,
    )
    await db_session.commit()
    return Response(status_code=204)


@router.get("/v1/hospitals/{hospital_id}/alerts/daily", response_model=DailyAlertList)
async def daily_alerts(
    hospital_id: HospitalId,
    caller: Reader,
    db_session: SessionDep,
    zone: ZoneDep,
    today: TodayDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    department: DepartmentFilter = None,
) -> DailyAlertList:
    """Cases that escalated to each level on each local day of the last `days`."""
    return await indicator_service.daily_alerts(
        db_session=db_session,
        caller=caller,
        zone=zone,
        today=today,
        hospital_id=hospital_id,
        days=days,
        department=department,
    )
