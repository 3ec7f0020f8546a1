"""The projector inserts an alert once: ids it saw committed are not inserted again with
every later write of the same case."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select

from services.alerting.projector import CommittedAlerts, write_batch
from services.storage.models import AlertRecord
from tests.api.conftest import Api
from tests.api.corefactory import CaseBuilder

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def alert_count(api: Api) -> int:
    async with api.sessions() as db_session:
        return int(await db_session.scalar(select(func.count()).select_from(AlertRecord)) or 0)


async def test_an_alert_committed_once_is_not_inserted_again(api: Api) -> None:
    case = CaseBuilder("H001", "C1", clock=T0).admit(department="CARD")
    case.cost("37000.00", item_code="STENT", category="consumable", department="CARD")
    committed = CommittedAlerts()
    await write_batch(api.engine, api.sessions, [case.to_dict()], [], committed=committed)
    raised = await alert_count(api)
    assert raised >= 1
    assert all(alert["alert_id"] in committed for alert in case.to_dict()["alerts"])
    # the rows gone behind the projector's back: a later write of the same case does not
    # bring back what it saw committed, where a projector without the memory would
    async with api.sessions() as db_session:
        await db_session.execute(delete(AlertRecord))
        await db_session.commit()
    await write_batch(api.engine, api.sessions, [case.to_dict()], [], committed=committed)
    assert await alert_count(api) == 0
    await write_batch(api.engine, api.sessions, [case.to_dict()], [])
    assert await alert_count(api) == raised


def test_the_memory_of_committed_alerts_is_bounded() -> None:
    committed = CommittedAlerts(limit=3)
    committed.add(["a", "b", "c", "d"])
    assert "a" not in committed and all(name in committed for name in "bcd")
