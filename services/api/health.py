"""Liveness and readiness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from services.storage.models import WorkerHeartbeat

router = APIRouter(tags=["health"])
HEARTBEAT_FRESH = timedelta(seconds=3)  # three missed heartbeats (one a second)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 once the database answers, events can be published and a worker has joined."""
    checks: dict[str, str] = {}
    try:
        async with request.app.state.sessions() as db_session:
            await db_session.execute(text("SELECT 1"))
            cutoff = datetime.now(UTC) - HEARTBEAT_FRESH
            ready_workers = (
                await db_session.scalars(
                    select(WorkerHeartbeat.worker_id).where(
                        WorkerHeartbeat.ready.is_(True), WorkerHeartbeat.updated_at >= cutoff
                    )
                )
            ).all()
        checks["database"] = "ok"
        checks["worker"] = "ok" if ready_workers else "no worker has joined its group yet"
    except SQLAlchemyError as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
        checks["worker"] = "unknown"
    checks["broker"] = "ok" if request.app.state.publisher.started else "not connected"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
