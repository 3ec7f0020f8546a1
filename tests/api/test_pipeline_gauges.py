"""Open cases by level and the ledger's backlog, counted from PostgreSQL at most every
`every` seconds however often /metrics is read."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.gauges import PipelineGauges
from services.storage.engine import session_factory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def open_cases(level: str) -> float | None:
    return REGISTRY.get_sample_value("drgwatch_open_cases", {"level": level})


async def add_case(engine: AsyncEngine, case_id: str, level: str, *, discharged: bool) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO cases (hospital_id, case_id, status, total_cost, level,"
                " cost_by_category, top_contributors, utc_offset_minutes, events_applied,"
                " updated_at, discharged_at)"
                " VALUES ('H1', :case_id, 'open', 0, :level, '{}', '[]', 0, 1, now(),"
                " CASE WHEN :discharged THEN now() END)"
            ),
            {"case_id": case_id, "level": level, "discharged": discharged},
        )


async def test_open_cases_are_counted_by_level_at_most_every_period(pg_engine: AsyncEngine) -> None:
    clock = Clock()
    gauges = PipelineGauges(session_factory(pg_engine), every=15, clock=clock)
    await add_case(pg_engine, "C1", "red", discharged=False)
    await add_case(pg_engine, "C2", "red", discharged=False)
    await add_case(pg_engine, "C3", "red", discharged=True)
    await gauges.refresh()
    assert open_cases("red") == 2
    assert open_cases("blue") == 0  # every level shown, with no case as with some
    assert REGISTRY.get_sample_value("drgwatch_ledger_unpublished") == 0

    await add_case(pg_engine, "C4", "red", discharged=False)
    clock.now += 14
    await gauges.refresh()
    assert open_cases("red") == 2  # not counted again within the period
    clock.now += 1
    await gauges.refresh()
    assert open_cases("red") == 3
