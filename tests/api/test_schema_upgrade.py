"""A database made by an earlier version gets the columns added since (no data lost)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from services.storage.engine import create_schema, make_engine

EARLIER_LEDGER = """
CREATE TABLE ingest_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    hospital_id VARCHAR(64) NOT NULL, event_id VARCHAR(64) NOT NULL,
    case_id VARCHAR(64) NOT NULL, event_type VARCHAR(32) NOT NULL,
    payload TEXT NOT NULL, payload_hash VARCHAR(64) NOT NULL,
    received_at DATETIME NOT NULL, published BOOLEAN NOT NULL,
    CONSTRAINT uq_ledger_event UNIQUE (hospital_id, event_id)
)
"""


async def test_an_earlier_ledger_gets_case_seq_and_keeps_its_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'earlier.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text(EARLIER_LEDGER))
            await connection.execute(
                text(
                    "INSERT INTO ingest_ledger (hospital_id, event_id, case_id, event_type,"
                    " payload, payload_hash, received_at, published) VALUES ('H1', 'e1', 'C1',"
                    " 'charge', '{}', 'x', '2026-11-01 00:00:00', 1)"
                )
            )
        await create_schema(engine)
        await create_schema(engine)  # and again: nothing to do
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("ingest_ledger")}
            )
            rows = (
                await connection.execute(text("SELECT event_id, case_seq FROM ingest_ledger"))
            ).all()
        assert "case_seq" in columns
        assert [tuple(row) for row in rows] == [("e1", None)]
    finally:
        await engine.dispose()
