"""Case snapshots: the projector keeps each case's changelog value with its next ledger
sequence, and a restore queues only the ledger entries no snapshot has applied."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson
from sqlalchemy import select

from services.alerting.projector import write_batch
from services.alerting.restore import mark_tail_unpublished
from services.storage.models import CaseSequence, CaseSnapshot, LedgerEntry
from tests.api.conftest import Api
from tests.api.corefactory import CaseBuilder

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def snapshots(api: Api) -> dict[str, tuple[int, bytes]]:
    async with api.sessions() as db_session:
        rows = (await db_session.execute(select(CaseSnapshot))).scalars().all()
        return {row.case_id: (row.next_sequence, bytes(row.state)) for row in rows}


async def test_the_projector_keeps_the_changelog_value_and_its_next_sequence(
    any_api: Api,
) -> None:
    case = CaseBuilder("H001", "C1", clock=T0).admit(department="CARD")
    state = case.to_dict() | {"next_sequence": 2}
    value = orjson.dumps(state)
    await write_batch(any_api.engine, any_api.sessions, [state], [], state_values=[value])
    assert await snapshots(any_api) == {"C1": (2, value)}
    case.cost("120.00", item_code="LAB1", category="lab", department="CARD")
    later = case.to_dict() | {"next_sequence": 3}
    await write_batch(
        any_api.engine, any_api.sessions, [later], [], state_values=[orjson.dumps(later)]
    )
    assert await snapshots(any_api) == {"C1": (3, orjson.dumps(later))}
    # a write without the changelog values (a test's) keeps no snapshot
    other = CaseBuilder("H001", "C2", clock=T0).admit(department="CARD").to_dict()
    await write_batch(any_api.engine, any_api.sessions, [other], [])
    assert set(await snapshots(any_api)) == {"C1"}


async def test_only_the_entries_no_snapshot_has_applied_are_queued(any_api: Api) -> None:
    # C1: snapshot applied 1-3 of 5; C2: snapshot applied all 2; C3: no snapshot (3
    # entries); C4: one entry from before numbering, with no case number
    ledger = [("C1", n) for n in range(1, 6)] + [("C2", 1), ("C2", 2)]
    ledger += [("C3", n) for n in range(1, 4)] + [("C4", None)]
    async with any_api.sessions() as db_session:
        for number, (case_id, case_seq) in enumerate(ledger):
            payload = f'{{"n": {number}}}'
            db_session.add(
                LedgerEntry(
                    hospital_id="H001",
                    event_id=f"{case_id}-{case_seq}",
                    case_id=case_id,
                    event_type="charge",
                    payload=payload,
                    payload_hash=hashlib.sha256(payload.encode()).hexdigest(),
                    received_at=T0,
                    # C1's 5th is unpublished already (it never reached the lost broker)
                    published=(case_id, case_seq) != ("C1", 5),
                    case_seq=case_seq,
                )
            )
        for case_id, last in (("C1", 5), ("C2", 2), ("C3", 3)):
            db_session.add(CaseSequence(hospital_id="H001", case_id=case_id, last_seq=last))
        for case_id, next_sequence in (("C1", 4), ("C2", 3)):
            db_session.add(
                CaseSnapshot(
                    hospital_id="H001", case_id=case_id, next_sequence=next_sequence, state=b"{}"
                )
            )
        await db_session.commit()
    async with any_api.sessions() as db_session:
        queued = await mark_tail_unpublished(db_session)
        await db_session.commit()
    async with any_api.sessions() as db_session:
        unpublished = (
            await db_session.execute(
                select(LedgerEntry.case_id, LedgerEntry.case_seq).where(
                    LedgerEntry.published.is_(False)
                )
            )
        ).all()
    assert sorted(unpublished, key=str) == sorted(
        [("C1", 4), ("C1", 5), ("C3", 1), ("C3", 2), ("C3", 3), ("C4", None)], key=str
    )
    assert queued == 6
