"""The HTTP service: ingest and query on one origin (production may split them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api import openapi as openapi_document
from services.api.alerts.lifecycle_router import router as alert_lifecycle_router
from services.api.alerts.router import router as alerts_router
from services.api.auth import Authentication
from services.api.cases.precheck import router as precheck_router
from services.api.cases.router import router as cases_router
from services.api.catalogue.router import router as catalogue_router
from services.api.deadletters.router import router as dead_letters_router
from services.api.exceptions import DrgwatchApiError, Unavailable
from services.api.health import router as health_router
from services.api.subscriptions.dispatcher import Dispatcher, DispatchSettings
from services.api.subscriptions.router import router as subscriptions_router
from services.ingest.exceptions import LedgerUnavailable, PayloadRejected
from services.ingest.publisher import EventPublisher, run_relay
from services.ingest.router import router as ingest_router
from services.metrics import INGEST_UNAVAILABLE, REQUEST_SECONDS
from services.settings import StackSettings
from services.storage.engine import create_schema, is_unavailable, make_engine, session_factory

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 2
BODY_PARSE_ERROR = "There was an error parsing the body"


def create_app(settings: StackSettings, *, connect_broker: bool = True) -> FastAPI:
    """Wire settings, database, publisher and routers into one FastAPI app."""
    engine = make_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    publisher = EventPublisher(settings.kafka_bootstrap, settings.events_topic)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await create_schema(engine)
        relay: asyncio.Task[None] | None = None
        if connect_broker:
            await _start_publisher(publisher)
            relay = asyncio.create_task(run_relay(sessions, publisher))
        dispatcher: Dispatcher | None = None
        dispatching: asyncio.Task[None] | None = None
        if settings.webhooks:
            dispatcher = Dispatcher(engine, sessions, DispatchSettings.of(settings))
            dispatching = asyncio.create_task(dispatcher.run())
        if settings.mode == "embedded":
            log.warning(
                "embedded mode: requests without a key act as the local admin;"
                " the API is bound to loopback"
            )
        try:
            yield
        finally:
            if dispatcher is not None and dispatching is not None:
                await dispatcher.stop(dispatching)
            if relay is not None:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay
            await publisher.stop()
            await engine.dispose()

    app = FastAPI(
        title="drgwatch",
        version="1.0",
        summary="Real-time inpatient case cost against DRG payment standards",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.publisher = publisher
    for router in (
        ingest_router,
        cases_router,
        precheck_router,
        alerts_router,
        alert_lifecycle_router,  # after alerts_router: /v1/alerts/stream is not an alert id
        subscriptions_router,
        catalogue_router,
        dead_letters_router,
        health_router,
    ):
        app.include_router(router)
    app.add_middleware(
        Authentication,
        sessions=sessions,
        operator_keys=settings.api_key_list,
        require_key=settings.mode == "production",
    )
    _install_metrics(app)
    _install_openapi(app, production=settings.mode == "production")
    _install_error_handlers(app)
    _install_timing(app)
    return app


async def _start_publisher(publisher: EventPublisher) -> None:
    for attempt in range(30):
        try:
            await publisher.start()
            return
        except Exception as error:  # noqa: BLE001 - the broker may still be starting
            log.warning("broker not reachable yet (%s), attempt %d", error, attempt + 1)
            await asyncio.sleep(1)
    log.error("broker unreachable: events are ledgered and relayed once it is back")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PayloadRejected)
    async def _payload_rejected(_: Request, error: PayloadRejected) -> JSONResponse:
        body: dict[str, object] = {
            "detail": error.message,
            "errors": [e.model_dump() for e in error.errors],
        }
        if error.results:
            body["results"] = [r.model_dump() for r in error.results]
        return JSONResponse(body, status_code=error.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and error.detail == BODY_PARSE_ERROR:
            # FastAPI's answer to a body that is not UTF-8: the same 422 as bad JSON
            return JSONResponse(
                {
                    "detail": "the request is invalid",
                    "errors": [{"field": "body", "reason": "not valid UTF-8 JSON"}],
                },
                status_code=422,
            )
        return JSONResponse(
            {"detail": str(error.detail)}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "reason": str(e["msg"]).removeprefix("Value error, "),
            }
            for e in error.errors()
        ]
        return JSONResponse(
            {"detail": "the request is invalid", "errors": jsonable_encoder(errors)},
            status_code=422,
        )

    @app.exception_handler(DrgwatchApiError)
    async def _api_error(_: Request, error: DrgwatchApiError) -> JSONResponse:
        headers = (
            {"Retry-After": str(error.retry_after)} if isinstance(error, Unavailable) else None
        )
        return JSONResponse(
            {"detail": error.message}, status_code=error.status_code, headers=headers
        )

    @app.exception_handler(LedgerUnavailable)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def _database_down(request: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, LedgerUnavailable) and not is_unavailable(error):
            log.error("database error: %s", type(error).__name__)
            return JSONResponse({"detail": "internal error"}, status_code=500)
        log.warning("database unavailable: %s", type(error).__name__)
        if request.url.path == "/v1/events":
            INGEST_UNAVAILABLE.inc()
            detail = (
                "the database is unavailable, so the events could not be made durable; retry"
                " later (a retry is safe: event ids make it idempotent)"
            )
        else:
            detail = "the database is unavailable; retry later"
        return JSONResponse(
            {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )


def _install_metrics(app: FastAPI) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _install_openapi(app: FastAPI, *, production: bool) -> None:
    """Serve the OpenAPI document with the event contract and every error documented."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = openapi_document.build(app, production=production)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_timing(app: FastAPI) -> None:
    app.add_middleware(RequestTiming)


class RequestTiming:
    """Request durations by route and status, until the response starts (pure ASGI:
    Starlette's BaseHTTPMiddleware cost a noticeable share of each small request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                path = getattr(scope.get("route"), "path", "unmatched")
                REQUEST_SECONDS.labels(scope["method"], path, str(message["status"])).observe(
                    time.perf_counter() - started
                )
            await send(message)

        await self.app(scope, receive, timed_send)
