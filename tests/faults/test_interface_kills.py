"""Nothing acknowledged is lost when the API process is killed: HL7 v2 over MLLP and FHIR.

The API process serves POST /v1/fhir and the MLLP listener. In each test hospital
systems send a few hundred messages over 20 cases while the API process is SIGKILLed
twice at random moments and restarted (the listening sockets are the harness's, as
`drgwatch up` holds them, so connections made meanwhile wait in the listen queue). The
first kill lands after a message is durable and before its answer is written, so its
resend must be recognised as already received; the second while messages are on their
way.

1. three interface engines (tests/faults/interfaces.py `MllpEngine`) send ADT^A01 to
   open each case, then DFT^P03 messages of several FT1 lines, over MLLP;
2. three hospital systems post transaction and batch Bundles of ChargeItems (an
   Encounter opens each case) to POST /v1/fhir.

At the end every charge is in the ingest ledger exactly once with its amount, every
acknowledged message's events are there, nothing became a dead letter, and each case's
total equals the sum of its charges (exact Decimal) with one applied event per ledger
row. The figures are printed with the fault-injection suite's.
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.faults.interfaces import (
    FhirPoster,
    MllpEngine,
    Outgoing,
    Sender,
    outage_after,
    progress,
    wait_for_progress,
)
from tests.faults.report import report
from tests.integration.harness import Stack, running_stack
from tests.unit.fhir_samples import LOINC, as_json, bundle, charge_item, encounter

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SHANGHAI = ZoneInfo("Asia/Shanghai")
CASES = 20
SENDERS = 3  # each sends its own cases' messages, in order
HL7_MESSAGES = 320
HL7_PER_SECOND = 20.0  # offered by the engines together
FHIR_BUNDLES = 200
FHIR_PER_SECOND = 12.0
SENDING_TIMEOUT = 90.0
HELD_SECONDS = 0.5  # durable and unanswered this long with the broker paused
CATCH_UP_TIMEOUT = 45.0
HL7_CODING_SYSTEMS = ["DRUG", "CONS", "LAB", "EXAM", "PROC", "BED", "NURS"]
FHIR_HOSPITAL = f"HF{uuid.uuid4().hex[:6]}"


@pytest.fixture
def mllp_stack(own_postgres_url: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(tmp_path, own_postgres_url, mllp=True) as running:
        yield running


@pytest.fixture
def fhir_stack(own_postgres_url: str, tmp_path: Path) -> Iterator[Stack]:
    mapping = tmp_path / "fhir-mapping.yaml"
    mapping.write_text(
        f"hospitals:\n  {FHIR_HOSPITAL}:\n    locations: {{ward-3a: CARD}}\n"
        "category_systems: {http://loinc.org: lab}\n",
        encoding="utf-8",
    )
    settings = {"DRGWATCH_FHIR_MAPPING": str(mapping)}
    with running_stack(tmp_path, own_postgres_url, settings) as running:
        yield running


def hl7_channels(rng: random.Random, hospital_id: str) -> list[list[Outgoing]]:
    """Each engine's messages: its cases' ADT^A01, then DFT^P03s of 2-6 FT1 lines."""
    when = (datetime.now(SHANGHAI) - timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    header = f"MSH|^~\\&|HIS|{hospital_id}|DRGWATCH|DRGWATCH|{when}||"
    channels: list[list[Outgoing]] = [[] for _ in range(SENDERS)]
    case_ids = [f"V{n:03d}" for n in range(CASES)]
    for n, case_id in enumerate(case_ids):
        control_id = f"{case_id}-A01"
        text = "\r".join(
            [
                f"{header}ADT^A01|{control_id}|P|2.5",
                f"EVN|A01|{when}",
                f"PV1|1|I|W3|||||||CARD|||||||||{case_id}|01{'|' * 24}{when}",
            ]
        )
        admitted = (f"{control_id}:admitted",)
        channels[n % SENDERS].append(Outgoing(control_id, case_id, text.encode(), {}, admitted))
    for m in range(HL7_MESSAGES - CASES):
        n = rng.randrange(CASES)
        case_id = case_ids[n]
        control_id = f"{case_id}-D{m:04d}"
        segments = [
            f"{header}DFT^P03|{control_id}|P|2.5",
            f"PV1|1|I|W3|||||||CARD|||||||||{case_id}|01",
        ]
        charges: dict[str, Decimal] = {}
        for line in range(1, rng.randint(2, 6) + 1):
            transaction_id = f"{control_id}-{line}"
            quantity = rng.choice([1, 1, 1, 2, 3])
            unit = Decimal(rng.randrange(1, 500_000)) / 100
            amount = quantity * unit
            system = rng.choice(HL7_CODING_SYSTEMS)
            segments.append(
                f"FT1|{line}|{transaction_id}||{when}||CG|IT{line:02d}^Item {line}^{system}"
                f"|||{quantity}|{amount}|{unit}|CARD||||||||DR01^Li"
            )
            charges[transaction_id] = amount
        body = "\r".join(segments).encode()
        channels[n % SENDERS].append(Outgoing(control_id, case_id, body, charges, tuple(charges)))
    return channels


def fhir_channels(rng: random.Random, hospital_id: str) -> list[list[Outgoing]]:
    """Each poster's Bundles: per case a transaction opening it (the Encounter and its
    first charges), then transaction or batch Bundles of 2-6 ChargeItems."""
    moment = datetime.now(SHANGHAI) - timedelta(hours=2)
    stamp = moment.isoformat(timespec="seconds")
    tag = {"system": "urn:drgwatch:hospital", "code": hospital_id}
    meta = {"versionId": "1", "lastUpdated": stamp, "tag": [tag]}
    channels: list[list[Outgoing]] = [[] for _ in range(SENDERS)]
    case_ids = [f"E{n:03d}" for n in range(CASES)]
    opened: set[str] = set()

    def charges_for(case_id: str, name: str, count: int) -> dict[str, dict[str, Any]]:
        items = {}
        for line in range(1, count + 1):
            quantity = rng.choice([1, 1, 1, 2])
            amount = Decimal(rng.randrange(1, 200_000) * quantity) / 100
            item_id = f"{name}-{line}"
            items[item_id] = charge_item(
                item_id,
                meta=meta,
                context={"reference": f"Encounter/{case_id}"},
                code={"coding": [{"system": LOINC, "code": f"L{line:03d}", "display": "Panel"}]},
                occurrenceDateTime=stamp,
                quantity={"value": Decimal(quantity)},
                priceOverride={"value": amount, "currency": "CNY"},
                requestingOrganization=None,
            )
        return items

    for m in range(FHIR_BUNDLES):
        n = m if m < CASES else rng.randrange(CASES)
        case_id = case_ids[n]
        name = f"{case_id}-B{m:04d}"
        resources: list[dict[str, Any]] = []
        event_ids: list[str] = []
        kind = rng.choice(["transaction", "batch"])
        if case_id not in opened:
            opened.add(case_id)
            admission = encounter(
                case_id,
                meta=meta,
                period={"start": stamp},
                location=[
                    {
                        "location": {"reference": "Location/ward-3a"},
                        "status": "active",
                        "period": {"start": stamp},
                    }
                ],
            )
            del admission["serviceProvider"]
            resources.append(admission)
            event_ids.append(f"fhir:enc:{case_id}:admitted")
            kind = "transaction"
        items = charges_for(case_id, name, rng.randint(2, 6))
        resources.extend(items.values())
        charges = {
            f"fhir:ci:{item_id}": item["priceOverride"]["value"] for item_id, item in items.items()
        }
        event_ids.extend(charges)
        body = as_json(bundle(kind, *resources))
        channels[n % SENDERS].append(Outgoing(name, case_id, body, charges, tuple(event_ids)))
    return channels


def kill_the_api_twice(
    stack: Stack, senders: Sequence[Sender], rng: random.Random
) -> tuple[list[str], str]:
    """SIGKILL the API twice, at a random moment of each half of the sending, and start it
    again each time: first once a message it has made durable still waits for its answer,
    then while any message is on its way. (figures, the key of that first message)"""
    figures = []
    recorded = ""
    for n, share in enumerate((rng.uniform(0.15, 0.45), rng.uniform(0.55, 0.85))):
        wait_for_progress(senders, share)
        at = progress(senders)
        if n == 0:
            recorded = kill_once_durable_but_unanswered(stack, senders)
            how = f"{recorded} durable, its answer not yet written"
        else:
            stack.wait_for(lambda: any(s.in_flight for s in senders), timeout=30, interval=0.001)
            Stack.kill(stack.api)
            how = "messages on their way"
        killed = time.monotonic()
        time.sleep(rng.uniform(0.2, 1.5))  # a supervisor's restart delay
        stack.start_api()
        ready = stack.wait_ready()
        restarted = time.monotonic()

        def answered_again(since: float = killed, after: float = restarted) -> bool:
            first_failure, recovered = outage_after(senders, since)
            answered = any(t > after for s in senders for t in list(s.delivery.successes))
            finished = not any(s.thread.is_alive() for s in senders)
            return finished or (answered and (first_failure is None or recovered is not None))

        stack.wait_for(answered_again, timeout=60)
        text = f"at {at:.0%} answered ({how}): API ready again {restarted - killed:.1f} s"
        figures.append(text + f" after the kill (its start took {ready:.1f} s)")
    return figures, recorded


def kill_once_durable_but_unanswered(stack: Stack, senders: Sequence[Sender]) -> str:
    """Kill the API while a message it has committed waits for its answer; its key.

    With the broker paused, the API answers a message only after waiting
    PUBLISH_WAIT_SECONDS (2 s) to publish it: the window between durable and answered
    that a kill can otherwise only hit by chance. A message counts once it has been seen
    durable and unanswered for HELD_SECONDS: one committed and published just before the
    pause is answered at once and would be seen durable for a moment only.
    """
    assert stack.broker is not None
    os.kill(stack.broker.pid, signal.SIGSTOP)
    try:
        first_seen: dict[str, float] = {}
        found: list[str] = []

        def durable_in_flight() -> bool:
            flying = {
                s.current.event_ids[0]: s.current.key
                for s in senders
                if s.in_flight and s.current is not None
            }
            rows = stack.query(
                "SELECT event_id FROM ingest_ledger WHERE event_id = ANY($1::text[])",
                list(flying),
            )
            now = time.monotonic()
            durable = {flying[row["event_id"]] for row in rows}
            for key in list(first_seen):
                if key not in durable:
                    del first_seen[key]  # answered meanwhile
            for key in durable:
                first_seen.setdefault(key, now)
            found.extend(key for key, seen in first_seen.items() if now - seen >= HELD_SECONDS)
            return bool(found)

        stack.wait_for(durable_in_flight, timeout=30, interval=0.01)
        Stack.kill(stack.api)
    finally:
        os.kill(stack.broker.pid, signal.SIGCONT)
    return found[0]


def send_through_kills(
    stack: Stack, senders: Sequence[Sender], rng: random.Random
) -> tuple[list[str], float]:
    """Start the senders, kill the API twice meanwhile; (kill figures, seconds sending)."""
    started = time.monotonic()
    for sender in senders:
        sender.start()
    kills, recorded = kill_the_api_twice(stack, senders, rng)
    for sender in senders:
        sender.thread.join(max(0.0, started + SENDING_TIMEOUT - time.monotonic()))
    assert not any(sender.thread.is_alive() for sender in senders), "sending did not finish"
    sending = time.monotonic() - started
    for sender in senders:
        delivery = sender.delivery
        assert delivery.error is None, delivery.error
        assert not delivery.refused, f"refused: {delivery.refused[:5]}"
        assert not delivery.anomalies, f"unexpected answers: {delivery.anomalies[:5]}"
        assert delivery.acknowledged == [message.key for message in sender.messages]
    # the message made durable before the first kill was resent and recognised
    assert any(recorded in s.delivery.already_received for s in senders), recorded
    return kills, sending


def reconcile(stack: Stack, hospital_id: str, messages: Sequence[Outgoing]) -> dict[str, str]:
    """Compare the ledger, the dead letters and the cases with what was acknowledged."""
    rows = stack.query(
        "SELECT event_id, event_type, case_id, payload FROM ingest_ledger WHERE hospital_id = $1",
        hospital_id,
    )
    recorded = Counter(row["event_id"] for row in rows)
    doubled = [event_id for event_id, count in recorded.items() if count > 1]
    assert not doubled, f"events recorded twice: {doubled[:5]}"
    charges = {event_id: amount for m in messages for event_id, amount in m.charges.items()}
    amounts = {
        row["event_id"]: Decimal(orjson.loads(row["payload"])["amount"])
        for row in rows
        if row["event_id"] in charges
    }
    missing = [event_id for event_id in charges if event_id not in amounts]
    assert not missing, f"{len(missing)} acknowledged charges not in the ledger: {missing[:5]}"
    wrong = {e: (amounts[e], charges[e]) for e in charges if amounts[e] != charges[e]}
    assert not wrong, f"ledgered amounts differ: {list(wrong.items())[:5]}"
    stray = [
        row["event_id"]
        for row in rows
        if row["event_type"] in ("charge", "credit") and row["event_id"] not in charges
    ]
    assert not stray, f"money events no message carried: {stray[:5]}"
    absent = [m.key for m in messages if not set(m.event_ids) <= set(recorded)]
    assert not absent, f"acknowledged messages with events missing: {absent[:5]}"
    letters = stack.query("SELECT reason FROM dead_letters")
    assert not letters, f"dead letters: {[row['reason'] for row in letters[:5]]}"

    want_total: dict[str, Decimal] = defaultdict(Decimal)
    for message in messages:
        want_total[message.case_id] += sum(message.charges.values(), Decimal(0))
    want_applied = Counter(row["case_id"] for row in rows)
    caught_up_from = time.monotonic()

    def reconciled() -> bool:
        cases = stack.cases(hospital_id)
        return all(
            case_id in cases
            and Decimal(cases[case_id]["total_cost"]) == total
            and cases[case_id]["events_applied"] == want_applied[case_id]
            for case_id, total in want_total.items()
        )

    try:
        stack.wait_for(reconciled, timeout=CATCH_UP_TIMEOUT, interval=0.25)
    except AssertionError as timeout:
        cases = stack.cases(hospital_id)
        differ = {
            case_id: (cases.get(case_id, {}).get("total_cost"), str(total))
            for case_id, total in want_total.items()
            if cases.get(case_id, {}).get("total_cost") != str(total)
        }
        raise AssertionError(f"cases differ from their charges: {differ}") from timeout
    return {
        "ledger": f"{len(rows)} events, each once; all {len(charges)} charges with their"
        f" amounts; no dead letter",
        "cases": f"{len(want_total)} case totals equal the sum of their charges to the cent,"
        f" one applied event per ledger row ({time.monotonic() - caught_up_from:.1f} s"
        " after the last answer)",
    }


def delivery_figures(senders: Sequence[Sender], unit: str) -> dict[str, str]:
    attempts = sum(s.delivery.attempts for s in senders)
    resends = sum(s.delivery.resends for s in senders)
    answers: Counter[str] = Counter()
    for sender in senders:
        answers.update(sender.delivery.answers)
    again = sum(len(s.delivery.already_received) for s in senders)
    longest = max(s.delivery.longest_unanswered for s in senders)
    return {
        "sent": f"{attempts} {unit} ({resends} resent); answers {dict(sorted(answers.items()))}",
        "answered after a resend": f"{again} {unit} whose first send was recorded but"
        " unanswered: the resend was answered as already received",
        "longest outage": f"{longest:.1f} s from a message's first failure to its answer",
    }


def test_api_sigkilled_twice_while_interface_engines_send_hl7_over_mllp(
    mllp_stack: Stack,
) -> None:
    stack = mllp_stack
    rng = random.Random(311)
    hospital_id = f"HK{uuid.uuid4().hex[:6]}"
    channels = hl7_channels(rng, hospital_id)
    engines = [
        MllpEngine(stack.mllp_port, channel, per_second=HL7_PER_SECOND / SENDERS, name=f"mllp{n}")
        for n, channel in enumerate(channels)
    ]
    kills, sending = send_through_kills(stack, engines, rng)
    messages = [message for channel in channels for message in channel]
    figures = reconcile(stack, hospital_id, messages)
    lines = sum(len(message.charges) for message in messages)
    report(
        "6. API process SIGKILLed twice while interface engines send HL7 v2 over MLLP",
        {
            "messages": f"{len(messages)} ({CASES} ADT^A01, {len(messages) - CASES} DFT^P03"
            f" with {lines} FT1 lines) from {SENDERS} engines in {sending:.1f} s, one at a"
            f" time per connection; {sum(e.connections for e in engines)} connections",
            **{f"API SIGKILL {n}": text for n, text in enumerate(kills, start=1)},
            **delivery_figures(engines, "messages"),
            **figures,
        },
    )


def test_api_sigkilled_twice_while_fhir_bundles_are_posted(fhir_stack: Stack) -> None:
    stack = fhir_stack
    rng = random.Random(312)
    channels = fhir_channels(rng, FHIR_HOSPITAL)
    posters = [
        FhirPoster(stack.url, channel, per_second=FHIR_PER_SECOND / SENDERS, name=f"fhir{n}")
        for n, channel in enumerate(channels)
    ]
    kills, sending = send_through_kills(stack, posters, rng)
    messages = [message for channel in channels for message in channel]
    figures = reconcile(stack, FHIR_HOSPITAL, messages)
    items = sum(len(message.charges) for message in messages)
    report(
        "7. API process SIGKILLed twice while FHIR Bundles are posted",
        {
            "Bundles": f"{len(messages)} ({CASES} opening a case with its Encounter; {items}"
            f" ChargeItems) from {SENDERS} systems in {sending:.1f} s",
            **{f"API SIGKILL {n}": text for n, text in enumerate(kills, start=1)},
            **delivery_figures(posters, "Bundles"),
            **figures,
        },
    )
