"""Fixtures for the HTTP contract tests: the real app on the session PostgreSQL.

The app is built with connect_broker=False (nothing is published to Kafka) and its
lifespan is entered by hand, so the schema creation and shutdown run as in production.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.app import create_app
from services.api.settings import ApiSettings


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    engine: AsyncEngine  # the app's own engine
    sessions: async_sessionmaker[AsyncSession]

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()


@contextlib.asynccontextmanager
async def running_api(settings: ApiSettings) -> AsyncIterator[Api]:
    """The app with its lifespan running and a client to it; an exception in the app is
    answered as the server would (500), not raised into the test."""
    app = create_app(settings, connect_broker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(app=app, client=client, engine=app.state.engine, sessions=app.state.sessions)


@pytest.fixture
async def api(postgres_url: str, pg_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Api]:
    """The app with its lifespan running, over an emptied database (and a data
    directory of its own: a `drgwatch up` running from ./var is none of its business)."""
    settings = ApiSettings(
        database_url=postgres_url, topic_prefix="drgwatch-test", data_dir=tmp_path
    )
    async with running_api(settings) as running:
        yield running


@pytest.fixture(params=["postgresql", "sqlite"])
async def any_api(request: pytest.FixtureRequest, api: Api, tmp_path: Path) -> AsyncIterator[Api]:
    """The app on PostgreSQL (`api`), or on a new SQLite file, where money is stored as
    text. A module that sets the app up further (a fixed clock) overrides this fixture
    with one of the same name that takes it."""
    if request.param == "postgresql":
        yield api
        return
    settings = ApiSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}",
        topic_prefix="drgwatch-test",
        data_dir=tmp_path,
    )
    async with running_api(settings) as running:
        yield running
