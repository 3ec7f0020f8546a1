"""Liveness and readiness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from services.metrics import SUPERVISOR_STATE_FILE, read_supervisor_state, show_readiness
from services.storage.models import WorkerHeartbeat

router = APIRouter(tags=["health"])
HEARTBEAT_FRESH = timedelta(seconds=3)  # three missed heartbeats (one a second)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 once the database answers, events can be published and a worker has joined
    (under `drgwatch up`: every component runs, and the worker it started last has joined)."""
    checks: dict[str, str] = {}
    cutoff = datetime.now(UTC) - HEARTBEAT_FRESH
    settings = request.app.state.settings
    components = read_supervisor_state(settings.data_dir / SUPERVISOR_STATE_FILE)
    if components is not None:
        restarting = [
            f"{name} restarting" + (f" (last exit: {state.last_exit})" if state.last_exit else "")
            for name, state in components.items()
            if not state.running
        ]
        checks["components"] = "; ".join(restarting) or "ok"
        worker = components.get("worker")
        if worker is not None and worker.started_at is not None:
            # the heartbeat of a worker that was killed stays fresh for a few seconds
            cutoff = max(cutoff, datetime.fromtimestamp(worker.started_at, UTC))
    try:
        async with request.app.state.sessions() as db_session:
            await db_session.execute(text("SELECT 1"))
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
    show_readiness(ready)
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
