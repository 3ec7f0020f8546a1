"""The full-path benchmark's load generator, run in a process of its own.

`python -m services.bench.loadgen MODE CONFIG_JSON` against a running drgwatch:

- post: every batch in `batches_file` (JSON lines, one request body each) posted
  through `POST /v1/events` by `concurrency` clients as fast as they are answered;
- paced: postings offered at `rate` lines a second for `seconds`, while a live-stream
  client on `/v1/alerts/stream` notes when each alert arrives; latency is from the 202
  of the posting that carried the event to its alert arriving;
- lookup: `GET /v1/hospitals/{h}/cases/{c}` of random cases at `rate` a second;
- precheck: `POST /v1/hospitals/{h}/cases/{c}/precheck` of random cases at `rate` a
  second, each with one of `bodies` (items priced from the chargemaster, some in
  equivalence groups); latency from the moment each request was due, so a generator or
  a server falling behind counts.

It writes its figures as JSON to `report`.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

JSON = {"content-type": "application/json"}
SLOW_SECONDS = 0.02  # the pre-check's bar: slower answers are listed with when they were due


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def post(config: dict[str, Any]) -> dict[str, Any]:
    bodies = Path(config["batches_file"]).read_bytes().splitlines()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    answers: dict[str, int] = {}
    first = time.time()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=config["url"], timeout=30) as http:
            while not queue.empty():
                body = queue.get_nowait()
                while True:
                    response = await http.post(
                        "/v1/events", content=body, headers={"content-type": "application/json"}
                    )
                    answers[str(response.status_code)] = (
                        answers.get(str(response.status_code), 0) + 1
                    )
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))

    await asyncio.gather(*(client() for _ in range(config["concurrency"])))
    return {"first_post_at": first, "last_answer_at": time.time(), "answers": answers}


async def paced(config: dict[str, Any]) -> dict[str, Any]:
    postings: list[list[dict[str, Any]]] = orjson.loads(Path(config["postings_file"]).read_bytes())
    lines = sum(len(p) for p in postings)
    interval = len(postings) and config["seconds"] / len(postings)
    accepted_at: dict[str, float] = {}
    sent_at: dict[str, float] = {}
    answer_ms: list[float] = []
    arrived: dict[str, float] = {}
    offered: list[float] = []
    stop = asyncio.Event()

    async def listen() -> None:
        url = f"{config['url']}/v1/alerts/stream"
        params = {"hospital_id": config["hospital_id"]}
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http,
            http.stream("GET", url, params=params) as response,
        ):
            ready.set()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    alert = orjson.loads(line[6:])
                    arrived.setdefault(alert["event_id"], time.time())
                if stop.is_set():
                    return

    async def offer() -> None:
        await ready.wait()
        await asyncio.sleep(0.5)  # the stream is connected and polling
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            sends = []
            offered.append(time.time())
            for number, posting in enumerate(postings):
                due = started + number * interval
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                sends.append(asyncio.create_task(send(http, posting)))
            offered.append(time.time())
            await asyncio.gather(*sends)

    async def send(http: aiohttp.ClientSession, posting: list[dict[str, Any]]) -> None:
        sent = time.time()
        body = orjson.dumps({"events": posting})
        async with http.post(f"{config['url']}/v1/events", data=body, headers=JSON) as r:
            await r.read()
            status = r.status
        answered = time.time()
        answer_ms.append((answered - sent) * 1000)
        if status == 202:
            for event in posting:
                accepted_at[event["event_id"]] = answered
                sent_at[event["event_id"]] = sent

    ready = asyncio.Event()
    listener = asyncio.create_task(listen())
    await offer()
    await asyncio.sleep(config.get("drain_seconds", 3.0))
    stop.set()
    listener.cancel()
    caused = [event_id for event_id in arrived if event_id in accepted_at]
    # from the 202 (ingest answers once the events are durable and, within 2 s, on the
    # broker: an alert can reach the stream before its 202 reaches the client) ...
    latencies = [(arrived[e] - accepted_at[e]) * 1000 for e in caused]
    # ... and from the moment the posting was sent
    from_sent = [(arrived[e] - sent_at[e]) * 1000 for e in caused]
    return {
        "lines": lines,
        "offered_lines_per_s": round(lines / (offered[1] - offered[0]), 1),
        "alerts": len(latencies),
        "latency_ms": summary(latencies),
        "sent_to_alert_ms": summary(from_sent),
        "answer_ms": summary(answer_ms),
    }


def summary(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": round(percentile(values, 0.50), 1),
        "p90": round(percentile(values, 0.90), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1) if values else None,
    }


async def lookup(config: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(5)
    cases: list[str] = config["cases"]
    timings: list[float] = []
    errors = 0
    base = f"{config['url']}/v1/hospitals/{config['hospital_id']}/cases"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as http:

        async def one(case_id: str) -> None:
            nonlocal errors
            started = time.perf_counter()
            async with http.get(f"{base}/{case_id}") as response:
                await response.read()
                timings.append((time.perf_counter() - started) * 1000)
                errors += response.status != 200

        count = int(config["rate"] * config["seconds"])
        began = time.monotonic()
        tasks = []
        for number in range(count):
            await asyncio.sleep(max(0.0, began + number / config["rate"] - time.monotonic()))
            tasks.append(asyncio.create_task(one(rng.choice(cases))))
        await asyncio.gather(*tasks)
        took = time.monotonic() - began
    return {
        "requests": len(timings),
        "requests_per_s": round(len(timings) / took, 1),
        "errors": errors,
        "latency_ms": {
            "p50": round(percentile(timings, 0.50), 2),
            "p99": round(percentile(timings, 0.99), 2),
            "max": round(max(timings), 2),
        },
    }


async def precheck(config: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(7)
    cases: list[str] = config["cases"]
    bodies = [orjson.dumps(body) for body in config["bodies"]]
    timings: list[float] = []
    from_sent: list[float] = []  # as the lookups are timed: from when each was sent
    statuses: dict[str, int] = {}
    alternatives = 0
    slow: list[tuple[float, float]] = []  # (when due, epoch seconds; seconds to the answer)
    base = f"{config['url']}/v1/hospitals/{config['hospital_id']}/cases"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as http:

        async def one(case_id: str, body: bytes, due: float) -> None:
            nonlocal alternatives
            sent = time.monotonic()
            async with http.post(f"{base}/{case_id}/precheck", data=body, headers=JSON) as r:
                answer = await r.read()
                answered = time.monotonic()
                timings.append((answered - due) * 1000)
                waited = answered - due
                if waited > SLOW_SECONDS:
                    slow.append((round(time.time() - waited, 3), round(waited, 3)))
                from_sent.append((answered - sent) * 1000)
                statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
                if r.status == 200:
                    items = orjson.loads(answer)["items"]
                    alternatives += sum(len(item["alternatives"]) for item in items)

        count = int(config["rate"] * config["seconds"])
        began = time.monotonic()
        tasks = []
        for number in range(count):
            due = began + number / config["rate"]
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(
                asyncio.create_task(one(rng.choice(cases), bodies[number % len(bodies)], due))
            )
        await asyncio.gather(*tasks)
        took = time.monotonic() - began
    return {
        "requests": len(timings),
        "requests_per_s": round(len(timings) / took, 1),
        "errors": sum(n for status, n in statuses.items() if status != "200"),
        "statuses": statuses,
        "alternatives_listed": alternatives,
        "latency_ms": {
            "p50": round(percentile(timings, 0.50), 2),
            "p95": round(percentile(timings, 0.95), 2),
            "p99": round(percentile(timings, 0.99), 2),
            "max": round(max(timings), 2) if timings else None,
        },
        "sent_to_answer_ms": {
            "p50": round(percentile(from_sent, 0.50), 2),
            "p95": round(percentile(from_sent, 0.95), 2),
            "p99": round(percentile(from_sent, 0.99), 2),
        },
        # when the slow answers were due, to set beside the processes' logs
        "slow_answers": {"over_ms": SLOW_SECONDS * 1000, "due_at_and_seconds": sorted(slow)},
    }


MODES = {"post": post, "paced": paced, "lookup": lookup, "precheck": precheck}


def main() -> None:
    mode, config = sys.argv[1], orjson.loads(Path(sys.argv[2]).read_bytes())
    result = asyncio.run(MODES[mode](config))
    Path(config["report"]).write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main()
