"""The HTTP service: ingest and query on one origin (production may split them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import logs
from services.alerting.webhooks.dispatcher import Dispatcher, DispatchSettings
from services.alerting.webhooks.targets import TargetPolicy
from services.api import errors
from services.api import openapi as openapi_document
from services.api.alerts.lifecycle_router import router as alert_lifecycle_router
from services.api.alerts.live import AlertFeed, StreamSlots, sqlite_files
from services.api.alerts.router import router as alerts_router
from services.api.auth import OPEN_PATHS, Authentication, Clock, wall_clock
from services.api.briefings.router import router as briefings_router
from services.api.cases.explanation import TypicalMixes
from services.api.cases.precheck import router as precheck_router
from services.api.cases.router import router as cases_router
from services.api.deadletters.router import router as dead_letters_router
from services.api.docs import router as docs_router
from services.api.events import router as ingest_router
from services.api.fhir import router as fhir_router
from services.api.gauges import PipelineGauges
from services.api.guard import HostRule, RequestGuard, SecurityHeaders
from services.api.health import router as health_router
from services.api.hl7 import router as hl7_router
from services.api.identities.router import router as identities_router
from services.api.indicators.router import router as indicators_router
from services.api.limits import BodyLimit
from services.api.ratelimit import SignInThrottle
from services.api.reference.chargemaster import router as chargemaster_router
from services.api.reference.router import router as catalogue_router
from services.api.rules.router import router as rules_router
from services.api.settings import ApiSettings
from services.api.signin.router import router as sign_in_router
from services.api.subscriptions.router import router as subscriptions_router
from services.api.ui import router as ui_router
from services.ingest.fhir.mapping import load_mapping
from services.ingest.group_commit import GroupCommit
from services.ingest.hl7.mllp import MllpIntake, start_mllp
from services.ingest.hl7.profile import load_profiles
from services.ingest.publisher import EventPublisher, run_relay
from services.metrics import REQUEST_SECONDS, SUPERVISOR_STATE_FILE, SupervisedComponents
from services.reference import registry
from services.reference.chargemaster.service import KeptChargeBook
from services.reference.rules import DEFAULT_RULES_DIR
from services.storage import schema
from services.storage.engine import make_engine, session_factory
from services.storage.seal import load_seal
from services.wire import EventSeal

log = logging.getLogger(__name__)


def create_app(
    settings: ApiSettings,
    *,
    connect_broker: bool = True,
    clock: Clock = wall_clock,
    import_rule_files: bool = True,
    mllp: socket.socket | None = None,
) -> FastAPI:
    """Wire settings, database, publisher and routers into one FastAPI app (`clock`: the
    time sign-in sessions are opened, expired and throttled by; `import_rule_files`:
    import the rule files into the rule registry at start; `mllp`: a listening socket to
    serve HL7 v2 over MLLP on, beside HTTP)."""
    engine = make_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    publisher = EventPublisher(
        settings.kafka_bootstrap,
        settings.events_topic,
        retention=timedelta(hours=settings.topic_retention_hours),
    )
    webhook_targets = TargetPolicy.of(
        production=settings.mode == "production", allowed_targets=settings.webhook_allowed_targets
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # embedded: upgrade to the head; production: refuse a database not at the head
        await schema.prepare(engine, mode=settings.mode)
        if import_rule_files:
            await registry.import_at_start(
                sessions,
                settings.rules_dir or DEFAULT_RULES_DIR,
                changed_by="rule files (api start)",
            )
        relay: asyncio.Task[None] | None = None
        if connect_broker:
            await _start_publisher(publisher, await load_seal(sessions))
            relay = asyncio.create_task(run_relay(sessions, publisher))
        mllp_server = (
            await start_mllp(
                MllpIntake(
                    sessions=sessions,
                    profiles=app.state.hl7_profiles,
                    zone=settings.zone,
                    bounds=settings.time_bounds,
                    charge_book=app.state.charge_book,
                    publisher=publisher if connect_broker else None,
                ),
                sock=mllp,
            )
            if mllp is not None
            else None
        )
        dispatcher: Dispatcher | None = None
        dispatching: asyncio.Task[None] | None = None
        if settings.webhooks:
            dispatch_settings = DispatchSettings.of(settings, targets=webhook_targets)
            dispatcher = Dispatcher(engine, sessions, dispatch_settings)
            app.state.dispatcher = dispatcher
            dispatching = asyncio.create_task(dispatcher.run())
        if settings.mode == "embedded":
            log.warning(
                "embedded mode: requests without a key act as the local admin;"
                " the API is bound to loopback"
            )
        try:
            yield
        finally:
            if mllp_server is not None:
                mllp_server.close()
            if dispatcher is not None and dispatching is not None:
                await dispatcher.stop(dispatching)
            if relay is not None:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay
                # what the requests published is marked so, or the next API's relay
                # sends it again (which the worker refuses, at a cost)
                with contextlib.suppress(KafkaError, SQLAlchemyError, OSError, TimeoutError):
                    await asyncio.wait_for(publisher.flush_marks(sessions), 5)
            await publisher.stop()
            await app.state.alert_feed.stop()
            await engine.dispose()

    app = FastAPI(
        title="drgwatch",
        version="1.0",
        summary="Real-time inpatient case cost against DRG payment standards",
        lifespan=lifespan,
        # services/api/docs.py serves /docs with its assets; ReDoc would load from a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.publisher = publisher
    app.state.group_commit = GroupCommit(sessions, max_events=settings.ingest_group_events)
    app.state.stream_slots = StreamSlots(settings.streams_per_identity)
    app.state.alert_feed = AlertFeed(sessions, sqlite_files(settings.resolved_database_url))
    app.state.webhook_targets = webhook_targets
    app.state.dispatcher = None  # the webhook sender, while the lifespan runs it
    app.state.clock = clock
    app.state.sign_in_throttle = SignInThrottle()
    app.state.typical_mixes = TypicalMixes()
    app.state.charge_book = KeptChargeBook()
    app.state.fhir_mapping = load_mapping(settings.fhir_mapping)
    app.state.hl7_profiles = load_profiles(settings.hl7_profiles)
    for router in (
        ingest_router,
        fhir_router,
        hl7_router,
        cases_router,
        precheck_router,
        alerts_router,
        alert_lifecycle_router,  # after alerts_router: /v1/alerts/stream is not an alert id
        subscriptions_router,
        catalogue_router,
        chargemaster_router,
        rules_router,
        dead_letters_router,
        identities_router,
        indicators_router,
        briefings_router,
        sign_in_router,
        health_router,
        docs_router,
        ui_router,
    ):
        app.include_router(router)
    # the last added runs first: security headers, timing, the request guard, then the key
    app.add_middleware(
        Authentication,
        sessions=sessions,
        operator_keys=settings.api_key_list,
        require_key=settings.mode == "production",
        failures_burst=settings.auth_failures_burst,
        failures_per_minute=settings.auth_failures_per_minute,
        lifetimes=settings.session_lifetimes,
        clock=clock,
    )
    app.add_middleware(
        RequestGuard,
        rule=HostRule.of(
            embedded=settings.mode == "embedded", allowed_hosts=settings.allowed_host_list
        ),
        open_paths=OPEN_PATHS,
    )
    _install_metrics(app, settings, sessions)
    _install_openapi(app, production=settings.mode == "production")
    errors.install(app)
    # outside authentication: an oversized body is refused before anything else is done
    app.add_middleware(BodyLimit)
    _install_timing(app)
    app.add_middleware(SecurityHeaders)
    return app


async def _start_publisher(publisher: EventPublisher, seal: EventSeal) -> None:
    for attempt in range(30):
        try:
            await publisher.start(seal)
            return
        except Exception as error:  # noqa: BLE001 - the broker may still be starting
            log.warning("broker not reachable yet (%s), attempt %d", error, attempt + 1)
            await asyncio.sleep(1)
    log.error("broker unreachable: events are ledgered and relayed once it is back")


def _install_metrics(
    app: FastAPI, settings: ApiSettings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # this app's own registry: the process-wide one is shared by every app a test builds
    supervised = CollectorRegistry(auto_describe=False)
    supervised.register(SupervisedComponents(settings.data_dir / SUPERVISOR_STATE_FILE))
    gauges = PipelineGauges(sessions, every=settings.pipeline_metrics_seconds)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition."""
        await gauges.refresh()
        body = generate_latest() + generate_latest(supervised)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def _install_openapi(app: FastAPI, *, production: bool) -> None:
    """Serve the OpenAPI document with the event contract and every error documented."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = openapi_document.build(app, production=production)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_timing(app: FastAPI) -> None:
    app.add_middleware(RequestTiming)
    app.add_middleware(TraceContext)


class TraceContext:
    """The request's trace id (W3C traceparent, else X-Request-ID) on its log lines."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = logs.trace_id.set(logs.trace_of(scope["headers"]))
        try:
            await self.app(scope, receive, send)
        finally:
            logs.trace_id.reset(token)


# label values come from this set and the app's own route templates only: anyone may send
# any method and path, and each new label value is a new series kept for good
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestTiming:
    """Request durations by method, route template and status, until the response starts
    (pure ASGI: Starlette's BaseHTTPMiddleware cost a noticeable share of each small
    request). A method HTTP does not define is counted as `other`, a path no route
    matched as `unmatched`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
                path = getattr(scope.get("route"), "path", "unmatched")
                REQUEST_SECONDS.labels(method, path, str(message["status"])).observe(
                    time.perf_counter() - started
                )
            await send(message)

        await self.app(scope, receive, timed_send)
