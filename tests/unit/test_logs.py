"""Log lines: the JSON form, the access path, the trace id, and the format each mode gets."""

from __future__ import annotations

import io
import logging
import sys

import orjson
import pytest

from services import logs
from services.settings import CommonSettings


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("services.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_level_time_logger_message_and_the_known_context() -> None:
    line = orjson.loads(
        logs.JsonFormatter().format(
            record("applied %d", 3, event_id="E1", hospital_id="H1", case_key="H1/C1")
        )
    )
    assert line["level"] == "WARNING"
    assert line["logger"] == "services.test"
    assert line["message"] == "applied 3"
    assert line["time"].endswith("+00:00")
    assert (line["event_id"], line["hospital_id"], line["case_key"]) == ("E1", "H1", "H1/C1")


def test_a_json_line_leaves_out_any_other_attribute_of_the_record() -> None:
    made = record("refused", item_name="Imported stent X", patient_name="Wang", api_key="k" * 40)
    text = logs.JsonFormatter().format(made)
    assert "Imported stent X" not in text and "Wang" not in text and "k" * 40 not in text


def test_an_exception_gives_its_type_and_stack_not_its_message() -> None:
    item_name = "".join(["Imported ", "stent X"])  # not in the source the stack quotes
    try:
        raise ValueError(f"item_name {item_name!r} is too long")
    except ValueError:
        made = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, None)
        made.exc_info = sys.exc_info()
    line = orjson.loads(logs.JsonFormatter().format(made))
    assert line["exception"] == "ValueError"
    assert "test_logs.py" in line["stack"]
    assert item_name not in orjson.dumps(line).decode()


def test_the_trace_id_of_the_request_in_hand_is_on_its_lines() -> None:
    token = logs.trace_id.set("4bf92f3577b34da6a3ce929d0e0e4736")
    try:
        line = orjson.loads(logs.JsonFormatter().format(record("answered")))
    finally:
        logs.trace_id.reset(token)
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "trace_id" not in orjson.loads(logs.JsonFormatter().format(record("later")))


@pytest.mark.parametrize(
    ("headers", "trace"),
    [
        (
            [(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        ([(b"x-request-id", b"req-17.a")], "req-17.a"),
        ([(b"x-request-id", b'a b"}')], None),  # not an id: not written
        ([(b"x-request-id", b"r" * 65)], None),
        ([(b"traceparent", b"garbage")], None),
        ([], None),
    ],
)
def test_trace_of_a_request(headers: list[tuple[bytes, bytes]], trace: str | None) -> None:
    assert logs.trace_of(headers) == trace


def test_the_access_line_names_the_path_without_its_query() -> None:
    made = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v1/alerts?api_key=secret&x=1", "1.1", 200),
        None,
    )
    assert logs.AccessPathFilter().filter(made)
    assert made.getMessage() == '127.0.0.1:5000 - "GET /v1/alerts HTTP/1.1" 200'


@pytest.mark.parametrize(
    ("path", "status", "kept"),
    [
        ("/readyz", 200, False),
        ("/readyz", 503, True),
        ("/healthz?x=1", 200, False),
        ("/v1/cases", 200, True),
    ],
)
def test_probes_that_succeed_have_no_access_line(path: str, status: int, kept: bool) -> None:
    made = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.2:5000", "GET", path, "1.1", status),
        None,
    )
    assert logs.AccessPathFilter().filter(made) is kept


@pytest.mark.parametrize(
    ("mode", "asked", "resolved"),
    [
        ("production", None, "json"),
        ("embedded", None, "text"),
        ("production", "text", "text"),
        ("embedded", "json", "json"),
    ],
)
def test_the_format_follows_the_mode_unless_asked(
    mode: str, asked: str | None, resolved: str
) -> None:
    settings = CommonSettings(mode=mode, database_url="sqlite+aiosqlite:///x", log_format=asked)  # type: ignore[arg-type]
    assert settings.resolved_log_format == resolved


def test_configure_replaces_its_own_handler_and_keeps_anyone_elses() -> None:
    root = logging.getLogger()
    kept = list(root.handlers)
    level = root.level
    try:
        root.handlers = []
        logs.configure("json", "INFO")
        logs.configure("text", "WARNING")
        [only] = root.handlers
        assert not isinstance(only.formatter, logs.JsonFormatter)
        assert root.level == logging.WARNING
        foreign = logging.NullHandler()
        root.handlers = [foreign]
        logs.configure("json", "INFO")
        assert root.handlers == [foreign]
    finally:
        root.handlers = kept
        root.setLevel(level)


def console_of(log_format: logs.LogFormat, level: str) -> str:
    """What drgwatch's handler writes, configured as a command configures it, for a Kafka
    client's INFO and WARNING lines and one of drgwatch's own."""
    root = logging.getLogger()
    kept, kept_level = list(root.handlers), root.level
    console = io.StringIO()
    try:
        root.handlers = []
        logs.configure(log_format, level)
        [ours] = root.handlers
        assert isinstance(ours, logging.StreamHandler)
        ours.setStream(console)
        coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
        coordinator.info("Joined group 'drgwatch-restore' (generation 1)")
        logging.getLogger("kafka.conn").info("<BrokerConnection> connecting")
        coordinator.warning("Heartbeat failed for group drgwatch-restore")
        logging.getLogger("services.stack").info("restoring the fresh broker")
    finally:
        root.handlers = kept
        root.setLevel(kept_level)
        for name in logs.CONSOLE_QUIET:
            logging.getLogger(name).setLevel(logging.NOTSET)
    return console.getvalue()


def test_the_console_in_lines_for_people_leaves_out_the_kafka_clients_info_lines() -> None:
    console = console_of("text", "INFO")
    assert "Joined group" not in console and "BrokerConnection" not in console
    assert "WARNING aiokafka.consumer.group_coordinator: Heartbeat failed" in console
    assert "INFO services.stack: restoring the fresh broker" in console


@pytest.mark.parametrize(("log_format", "level"), [("json", "INFO"), ("text", "DEBUG")])
def test_json_lines_and_debug_keep_the_kafka_clients_info_lines(
    log_format: logs.LogFormat, level: str
) -> None:
    console = console_of(log_format, level)
    assert "Joined group" in console and "BrokerConnection" in console
    assert "Heartbeat failed" in console and "restoring the fresh broker" in console


@pytest.mark.parametrize(
    ("document", "ids"),
    [
        (
            b'{"event_id":"E-1.a","hospital_id":"H1","case_id":"C:7","item_name":"stent"}',
            {"event_id": "E-1.a", "hospital_id": "H1", "case_id": "C:7"},
        ),
        # a value that is no identifier of the contract (a name, a sentence) stays out
        ({"event_id": "Lin Meixiu", "case_id": "C1", "hospital_id": 7}, {"case_id": "C1"}),
        ({"event_id": "e" * 65, "case_id": "-C1"}, {}),
        (b"{not json", {}),
        (b"[1, 2]", {}),
    ],
)
def test_ids_of_a_document_are_its_identifiers_only(document: object, ids: dict[str, str]) -> None:
    assert logs.ids_of(document) == ids
