"""`GET /v1/hospitals/{h}/briefings/weekly`: a department's week as JSON, CSV or a page."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from services.access.principal import Principal
from services.api.briefings import render
from services.api.briefings import service as briefing_service
from services.api.briefings.schemas import WeeklyBriefing
from services.api.deps import NowDep, PriceBookDep, SessionDep, TodayDep, ZoneDep, require
from services.api.params import DepartmentFilter, HospitalId
from services.casecost.events import CharacterRule
from services.settings import CommonSettings

router = APIRouter(tags=["indicators"])
Reader = Annotated[Principal, Depends(require("cases:read"))]
WeekFilter = Annotated[
    str | None,
    Query(pattern=briefing_service.WEEK_PATTERN, description=briefing_service.WEEK_RULE),
    CharacterRule(briefing_service.WEEK_RULE),
]
# a page's one style element, allowed by its hash; nothing else loads or runs
PAGE_POLICY = (
    "default-src 'none'; style-src {style}; img-src 'none'; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)


@router.get(
    "/v1/hospitals/{hospital_id}/briefings/weekly",
    response_model=WeeklyBriefing,
    responses={
        200: {
            "content": {"text/csv": {}, "text/html": {}},
            "description": "JSON by default; `format=csv` or `format=html` for a spreadsheet"
            " or a printable page, in Chinese or English (`lang`, else the browser's)",
        }
    },
)
async def weekly_briefing(
    hospital_id: HospitalId,
    request: Request,
    caller: Reader,
    db_session: SessionDep,
    price_book: PriceBookDep,
    zone: ZoneDep,
    today: TodayDep,
    now: NowDep,
    department: DepartmentFilter = None,
    week: WeekFilter = None,
    format: Literal["json", "csv", "html"] = "json",
    lang: Literal["zh", "en"] | None = None,
    accept_language: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """A week's indicators, the cases that turned red and why, and the week's alerts with
    how they were answered. `week` is an ISO week (default: the last one that has ended);
    without `department`, every department in the caller's scope."""
    chosen = week or briefing_service.last_complete_week(today)
    try:
        briefing_service.week_days(chosen)
    except ValueError as error:
        raise RequestValidationError(
            [{"loc": ("query", "week"), "msg": str(error), "type": "value_error"}]
        ) from None
    settings: CommonSettings = request.app.state.settings
    briefing = await briefing_service.weekly(
        db_session=db_session,
        caller=caller,
        price_book=price_book,
        zone=zone,
        zone_name=settings.timezone,
        now=now,
        hospital_id=hospital_id,
        department=department,
        week=chosen,
    )
    name = f"briefing-{hospital_id}-{department or 'all'}-{chosen}"
    if format == "json":
        return Response(
            content=briefing.model_dump_json(by_alias=True), media_type="application/json"
        )
    language = render.language_of(lang, accept_language)
    if format == "csv":
        return Response(
            content=render.to_csv(briefing, language, zone),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        content=render.to_html(briefing, language, zone),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PAGE_POLICY.format(style=render.style_hash())},
    )
