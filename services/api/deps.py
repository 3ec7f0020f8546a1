"""Request-scoped dependencies: the database session (committed at the edge)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.publisher import EventPublisher


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def get_publisher(request: Request) -> EventPublisher:
    publisher: EventPublisher = request.app.state.publisher
    return publisher


SessionDep = Annotated[AsyncSession, Depends(get_db)]
PublisherDep = Annotated[EventPublisher, Depends(get_publisher)]
