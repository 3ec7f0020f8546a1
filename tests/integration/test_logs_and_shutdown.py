"""Log lines and stops of the real processes (tansu broker, Faust worker, API).

1. In production log format every line the API and the worker write is one JSON object,
   and none carries an event's item name, a patient's fields, an API key or a token
   sent in a query string.
2. SIGTERM to the API: a request whose body is still arriving is answered, an open live
   stream ends, and the process exits 0 well within DRGWATCH_SHUTDOWN_SECONDS.
3. SIGTERM to the worker while events stream in: it exits 0 within the bound, and after
   a new worker takes over every case's total is the sum of its charges to the cent,
   with one applied event per event posted (nothing lost, nothing applied twice).
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.helpers import OPERATOR_KEY
from tests.integration.harness import Stack, running_stack

pytestmark = pytest.mark.integration

SHUTDOWN_SECONDS = 10
ITEM_NAME = "Qorvexa imported stent 88317"
PATIENT = {
    "patient_name": "Lin Meixiu-Zqa",
    "patient_id_card": "110101199003071234",
    "patient_phone": "13912345678",
}
QUERY_TOKEN = "tokQ9vX27LmQueryOnly"
WRONG_KEY = "wRongKey-0bq7VgS3nZ2xY8pL4cT9mK1hJ6fD5sA"


def admitted(hospital_id: str, case_id: str) -> dict[str, Any]:
    return {
        "event_id": f"{case_id}-adm",
        "type": "admitted",
        "hospital_id": hospital_id,
        "case_id": case_id,
        "occurred_at": "2026-11-20T08:00:00+08:00",
        "department": "CARDIO",
        "drg_code": "FM15",
        "insurance_scheme": "employee",
        "admitted_at": "2026-11-20T08:00:00+08:00",
    }


def charge(
    hospital_id: str, case_id: str, n: int, amount: str, item_name: str = "Blood panel"
) -> dict[str, Any]:
    return {
        "event_id": f"{case_id}-c{n}",
        "type": "charge",
        "hospital_id": hospital_id,
        "case_id": case_id,
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "department": "CARDIO",
        "item_code": "LAB001",
        "item_name": item_name,
        "category": "lab",
        "quantity": "1",
        "unit_price": amount,
        "amount": amount,
    }


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's output, each of which must be one JSON log object."""
    lines = []
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not text.strip():
            continue
        try:
            line = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise AssertionError(f"{path.name}: not a JSON line: {text[:200]}") from None
        assert {"level", "time", "logger", "message"} <= set(line), text
        lines.append(line)
    return lines


@pytest.fixture
def production_stack(own_postgres_url: str, tmp_path: Path) -> Iterator[Stack]:
    env = {
        "DRGWATCH_MODE": "production",
        "DRGWATCH_API_KEYS": OPERATOR_KEY,
        "DRGWATCH_LOG_LEVEL": "INFO",
        "DRGWATCH_SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS),
    }
    with running_stack(tmp_path, own_postgres_url, env) as stack:
        yield stack


def test_production_lines_are_json_and_name_no_item_patient_or_key(
    production_stack: Stack,
) -> None:
    stack = production_stack
    hospital_id, case_id = f"H{uuid.uuid4().hex[:6]}", "C1"
    keyed = {"X-API-Key": OPERATOR_KEY}
    trace = uuid.uuid4().hex
    traced = {**keyed, "traceparent": f"00-{trace}-00f067aa0ba902b7-01"}
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        events = [
            admitted(hospital_id, case_id),
            charge(hospital_id, case_id, 1, "12.50", ITEM_NAME),
        ]
        answer = client.post("/v1/events", json={"events": events}, headers=traced)
        assert answer.status_code == 202, answer.text
        # a charge with patient fields the contract does not have: refused, with its reason
        stray = {**charge(hospital_id, case_id, 2, "1.00", ITEM_NAME), **PATIENT}
        refused = client.post("/v1/events", json={"events": [stray]}, headers=keyed)
        assert refused.status_code in (202, 207, 400, 422), refused.text
        # a wrong key, and a key and a token in a query string
        assert client.get("/v1/alerts", headers={"X-API-Key": WRONG_KEY}).status_code == 401
        queried = client.get(
            "/v1/alerts", params={"api_key": OPERATOR_KEY, "token": QUERY_TOKEN}, headers=keyed
        )
        assert queried.status_code == 200, queried.text

        def applied() -> bool:
            found = client.get(f"/v1/hospitals/{hospital_id}/cases/{case_id}", headers=keyed)
            return found.status_code == 200 and Decimal(found.json()["total_cost"]) > 0

        stack.wait_for(applied, timeout=60, interval=0.25)
    stack.stop()

    api_lines = json_lines(stack.workdir / "api.log")
    worker_lines = json_lines(stack.workdir / "worker0.log")
    access = [line for line in api_lines if line["logger"] == "uvicorn.access"]
    assert any("/v1/alerts" in line["message"] for line in access), access
    assert any(line.get("trace_id") == trace for line in access), access
    assert worker_lines, "the worker wrote nothing at INFO"
    written = (
        "\n".join(orjson.dumps(line).decode() for line in [*api_lines, *worker_lines])
        + (stack.workdir / "api.log").read_text()
        + (stack.workdir / "worker0.log").read_text()
    )
    for secret in (ITEM_NAME, *PATIENT.values(), OPERATOR_KEY, WRONG_KEY, QUERY_TOKEN):
        assert secret not in written, f"{secret!r} is in the log"
    assert "?" not in "".join(line["message"] for line in access)


def test_sigterm_to_the_api_answers_the_request_in_flight_and_exits_0(
    own_postgres_url: str, tmp_path: Path
) -> None:
    env = {"DRGWATCH_SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS)}
    with running_stack(tmp_path, own_postgres_url, env) as stack:
        assert stack.api is not None
        hospital_id, case_id = f"H{uuid.uuid4().hex[:6]}", "C1"
        body = orjson.dumps({"events": [admitted(hospital_id, case_id)]})
        stream_ended = threading.Event()

        def hold_a_stream() -> None:
            with httpx.stream("GET", f"{stack.url}/v1/alerts/stream", timeout=60) as response:
                assert response.status_code == 200
                for _ in response.iter_bytes():
                    pass
            stream_ended.set()

        threading.Thread(target=hold_a_stream, daemon=True).start()
        time.sleep(1.0)
        slow = socket.create_connection(("127.0.0.1", stack.api_port), timeout=30)
        slow.sendall(
            b"POST /v1/events HTTP/1.1\r\nContent-Type: application/json\r\n"
            + f"Host: 127.0.0.1:{stack.api_port}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:20]
        )
        time.sleep(0.5)  # the request is in the API's hands, its body unfinished
        stopped_at = time.monotonic()
        stack.api.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert stack.api.poll() is None, "the API exited with a request in flight"
        slow.sendall(body[20:])
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = slow.recv(65536)
            if not chunk:
                break
            answer += chunk
        slow.close()
        assert answer.startswith(b"HTTP/1.1 202"), answer[:200]
        assert stack.api.wait(SHUTDOWN_SECONDS + 5) == 0
        took = time.monotonic() - stopped_at
        # the open stream ended at once rather than holding the API to its bound
        assert took < SHUTDOWN_SECONDS - 3, f"the API took {took:.1f} s to stop"
        assert stream_ended.wait(5), "the live stream did not end"
        # the event answered while stopping is there once the API is back
        stack.start_api()
        stack.wait_ready()
        stack.wait_for(lambda: stack.case(hospital_id, case_id) is not None, timeout=60)


def test_sigterm_to_the_worker_commits_what_it_applied(
    own_postgres_url: str, tmp_path: Path
) -> None:
    env = {"DRGWATCH_SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS)}
    with running_stack(tmp_path, own_postgres_url, env) as stack:
        hospital_id = f"H{uuid.uuid4().hex[:6]}"
        cases = [f"C{n}" for n in range(8)]
        stack.post([admitted(hospital_id, case_id) for case_id in cases])
        want_total = dict.fromkeys(cases, Decimal(0))
        want_events = dict.fromkeys(cases, 1)
        posting = threading.Event()
        posting.set()
        failures: list[str] = []

        def post_charges() -> None:
            n = 0
            with httpx.Client(base_url=stack.url, timeout=30) as client:
                while posting.is_set():
                    batch = []
                    for case_id in cases:
                        n += 1
                        amount = f"{(n % 97) + 1}.{n % 100:02d}"
                        batch.append(charge(hospital_id, case_id, n, amount))
                    answer = client.post("/v1/events", json={"events": batch})
                    if answer.status_code != 202:
                        failures.append(answer.text)
                        return
                    for event in batch:
                        want_total[event["case_id"]] += Decimal(event["amount"])
                        want_events[event["case_id"]] += 1
                    time.sleep(0.02)

        poster = threading.Thread(target=post_charges, daemon=True)
        poster.start()
        time.sleep(4)  # the worker is applying batches
        worker = stack.workers[0]
        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(SHUTDOWN_SECONDS + 10)
        took = time.monotonic() - stopped_at
        assert code == 0, f"the worker exited {code}; log in {stack.workdir}"
        assert took < SHUTDOWN_SECONDS, f"the worker took {took:.1f} s to stop"
        log = (stack.workdir / "worker0.log").read_text(errors="replace")
        assert "did not stop within" not in log
        time.sleep(1)
        stack.start_worker()
        time.sleep(3)
        posting.clear()
        poster.join(30)
        assert not failures, failures[:2]

        def reconciled() -> bool:
            found = stack.cases(hospital_id)
            return all(
                case_id in found
                and Decimal(found[case_id]["total_cost"]) == want_total[case_id]
                and found[case_id]["events_applied"] == want_events[case_id]
                for case_id in cases
            )

        try:
            stack.wait_for(reconciled, timeout=90, interval=0.5)
        except AssertionError:
            found = stack.cases(hospital_id)
            differ = {
                c: (
                    found.get(c, {}).get("total_cost"),
                    str(want_total[c]),
                    found.get(c, {}).get("events_applied"),
                    want_events[c],
                )
                for c in cases
            }
            raise AssertionError(f"cases differ (got, want): {differ}") from None
        letters = stack.query("SELECT reason FROM dead_letters")
        assert not letters, [row["reason"] for row in letters[:5]]
