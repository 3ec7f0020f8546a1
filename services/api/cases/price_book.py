"""The price book the API prices with: cached per process until the reference moves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.api.deps import SessionDep
from services.casecost.pricing import PriceBook
from services.reference import service as catalogue_service


async def current_price_book(request: Request, db_session: SessionDep) -> PriceBook:
    """The price book, loaded again only when the reference version moved."""
    version = await catalogue_service.reference_version(db_session=db_session)
    cached: PriceBook | None = getattr(request.app.state, "price_book", None)
    if cached is None or cached.version != version:
        cached = await catalogue_service.load_price_book(db_session=db_session)
        request.app.state.price_book = cached
    return cached


PriceBookDep = Annotated[PriceBook, Depends(current_price_book)]
