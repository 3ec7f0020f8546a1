"""Request-scoped dependencies: the database session (committed at the edge) and the caller."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, tzinfo
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.access.exceptions import NotPermitted
from services.access.principal import LOCAL_ADMIN, Permission, Principal
from services.api.auth import CallerCheck
from services.api.cases.explanation import TypicalMixes
from services.casecost.chargemaster import ChargeBook
from services.casecost.pricing import PriceBook
from services.ingest.publisher import EventPublisher
from services.reference import service as catalogue_service
from services.reference.chargemaster.service import KeptChargeBook
from services.reference.service import VERSION_TRUST_SECONDS
from services.settings import CommonSettings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


# dependencies are coroutines: FastAPI would run a plain function in a worker thread,
# a thread hop per dependency per request


async def get_publisher(request: Request) -> EventPublisher:
    publisher: EventPublisher = request.app.state.publisher
    return publisher


async def get_principal(request: Request) -> Principal:
    """The caller, as the authentication middleware resolved it (embedded: local admin)."""
    principal: Principal = getattr(request.state, "principal", LOCAL_ADMIN)
    return principal


def require(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, if their role grants `permission`; 403 otherwise."""

    async def caller_with(request: Request) -> Principal:
        principal: Principal = getattr(request.state, "principal", LOCAL_ADMIN)
        if not principal.may(permission):
            raise NotPermitted(f"the role {principal.role} may not do this ({permission})")
        return principal

    return caller_with


async def get_now() -> datetime:
    """The current moment; a dependency, so that a test can set the clock."""
    return datetime.now(UTC)


async def get_zone(request: Request) -> tzinfo:
    """The hospitals' time zone (DRGWATCH_TIMEZONE)."""
    settings: CommonSettings = request.app.state.settings
    return settings.zone


async def get_today(request: Request, now: Annotated[datetime, Depends(get_now)]) -> date:
    """The hospital's local day now (DRGWATCH_TIMEZONE): at 00:30 in Beijing on 1 December
    it is 1 December, though UTC is still on 30 November."""
    settings: CommonSettings = request.app.state.settings
    return now.astimezone(settings.zone).date()


async def get_caller_check(request: Request) -> CallerCheck:
    """Asks again who the caller is, past any cache (for responses that outlive a key)."""
    recheck: CallerCheck | None = getattr(request.state, "recheck_caller", None)
    if recheck is None:
        principal = await get_principal(request)

        async def unchanged() -> Principal | None:
            return principal

        return unchanged
    return recheck


async def get_typical_mixes(request: Request) -> TypicalMixes:
    """The typical category mixes of DRGs read lately (kept per process)."""
    mixes: TypicalMixes = request.app.state.typical_mixes
    return mixes


SessionDep = Annotated[AsyncSession, Depends(get_db)]


def forget_reference(app: Any) -> None:
    """Ask the database for the reference versions on the next request (after this
    process stored a catalogue, thresholds or a chargemaster)."""
    app.state.price_book_checked = -math.inf
    kept: KeptChargeBook = app.state.charge_book
    kept.forget()


async def get_price_book(request: Request, db_session: SessionDep) -> PriceBook:
    """The price book the worker prices with (in the hospitals' time zone), cached per
    process until the reference version moves (asked at most every VERSION_TRUST_SECONDS)."""
    state = request.app.state
    cached: PriceBook | None = getattr(state, "price_book", None)
    now = time.monotonic()
    if cached is not None and now - getattr(state, "price_book_checked", -math.inf) < (
        VERSION_TRUST_SECONDS
    ):
        return cached
    version = await catalogue_service.reference_version(db_session=db_session)
    if cached is None or cached.version != version:
        settings: CommonSettings = state.settings
        cached = await catalogue_service.load_price_book(db_session=db_session, zone=settings.zone)
        state.price_book = cached
    state.price_book_checked = now
    return cached


async def get_charge_book(request: Request, db_session: SessionDep) -> ChargeBook:
    """Every chargemaster version, kept per process until a new version is imported (the
    newest version's id asked at most every VERSION_TRUST_SECONDS); the MLLP listener in
    this process keeps the same one."""
    kept: KeptChargeBook = request.app.state.charge_book
    return await kept.current(db_session=db_session)


PublisherDep = Annotated[EventPublisher, Depends(get_publisher)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
NowDep = Annotated[datetime, Depends(get_now)]
TodayDep = Annotated[date, Depends(get_today)]
ZoneDep = Annotated[tzinfo, Depends(get_zone)]
CallerCheckDep = Annotated[CallerCheck, Depends(get_caller_check)]
PriceBookDep = Annotated[PriceBook, Depends(get_price_book)]
ChargeBookDep = Annotated[ChargeBook, Depends(get_charge_book)]
TypicalMixesDep = Annotated[TypicalMixes, Depends(get_typical_mixes)]
