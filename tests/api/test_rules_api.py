"""The rule registry through the API, on PostgreSQL and on a SQLite file: the rules the
files brought at start, new versions, switches, reload and the dry run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from services.alerting.projector import write_batch
from services.api.deps import get_now
from services.api.settings import ApiSettings
from services.casecost.apply import apply_event, new_case
from services.casecost.events import parse_event
from services.reference import registry
from services.storage.models import CaseRecord
from tests.api.conftest import Api, running_api
from tests.api.corefactory import PRICE_BOOK
from tests.api.helpers import admitted, charge
from tests.api.test_rule_watch import NOW, discharged

RULE_FILE = """version: 1
rules:
  - id: big-drug
    version: 1
    name: {zh: 大额药品, en: Large drug order}
    kind: order_bound
    severity: red
    params:
      bounds:
        drug: {max_amount: 5000}
"""


@pytest.fixture(params=["postgresql", "sqlite"])
async def rules_api(
    request: pytest.FixtureRequest, postgres_url: str, pg_engine: Any, tmp_path: Path
) -> AsyncIterator[Api]:
    """The app over an emptied database whose rule files are a directory of the test's."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "local.yaml").write_text(RULE_FILE, encoding="utf-8")
    url = (
        postgres_url
        if request.param == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path / 'drgwatch.db'}"
    )
    settings = ApiSettings(
        database_url=url, topic_prefix="drgwatch-test", data_dir=tmp_path, rules_dir=rules_dir
    )
    async with running_api(settings) as api:
        yield api
        # nothing of these rules may reach a later test's stack on the session database
        await _empty_registry(api)


async def _empty_registry(api: Api) -> None:
    async with api.engine.begin() as connection:
        from sqlalchemy import text

        for table in ("rule_switches", "rule_versions", "rule_heads"):
            await connection.execute(text(f"DELETE FROM {table}"))


def rules_dir(api: Api) -> Path:
    directory = api.app.state.settings.rules_dir
    assert isinstance(directory, Path)
    return directory


async def test_the_files_are_in_the_registry_from_the_start(rules_api: Api) -> None:
    listed = (await rules_api.client.get("/v1/rules")).json()
    [item] = listed["items"]
    assert item["rule_id"] == "big-drug"
    assert (item["version"], item["source"], item["in_force"]) == (1, "file:local.yaml", True)
    assert item["changed_by"] == "rule files (api start)"
    # exact: the YAML number 5000 is the decimal text "5000"
    assert item["rule"]["params"]["bounds"]["drug"]["max_amount"] == "5000"
    assert item["switches"] == []
    assert listed["generation"] >= 1


async def test_a_put_is_a_new_version_with_who_and_when(rules_api: Api) -> None:
    changed = dict(
        id="big-drug",
        version=99,  # the server gives the version
        name={"zh": "大额药品", "en": "Large drug order"},
        kind="order_bound",
        severity="yellow",
        params={"bounds": {"drug": {"max_amount": 8000.50}}},
    )
    response = await rules_api.client.put(
        "/v1/rules/big-drug", json={"rule": changed, "note": "fewer false alarms"}
    )
    assert response.status_code == 200, response.text
    detail = response.json()
    assert (detail["version"], detail["source"], detail["note"]) == (2, "api", "fewer false alarms")
    assert detail["changed_by"] == "local (embedded mode)"
    assert detail["rule"]["params"]["bounds"]["drug"]["max_amount"] == "8000.5"
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert [v["source"] for v in detail["versions"]] == ["api", "file:local.yaml"]
    # a new rule is 201 at version 1
    fresh = {**changed, "id": None}
    fresh.pop("id")
    created = await rules_api.client.put("/v1/rules/by-hand", json={"rule": fresh})
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1


async def test_an_invalid_rule_is_422_naming_the_field(rules_api: Api) -> None:
    bad = {
        "name": {"zh": "x", "en": "x"},
        "kind": "daily_spike",
        "severity": "orange",
        "params": {"factor": 0},
    }
    response = await rules_api.client.put("/v1/rules/spiky", json={"rule": bad})
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"rule.severity", "rule.params.factor"}
    unknown = await rules_api.client.put(
        "/v1/rules/spiky", json={"rule": {**bad, "severity": "red", "kind": "nope"}}
    )
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["rule.kind"]
    assert (await rules_api.client.get("/v1/rules/spiky")).status_code == 404


async def test_switches_are_set_cleared_and_kept_in_history(rules_api: Api) -> None:
    client = rules_api.client
    before = (await client.get("/v1/rules")).json()["generation"]
    off = await client.put(
        "/v1/rules/big-drug/switches",
        json={"hospital_id": "H001", "department": "ICU", "enabled": False, "note": "trial"},
    )
    assert off.status_code == 200, off.text
    [switch] = off.json()["switches"]
    assert (switch["hospital_id"], switch["department"], switch["enabled"]) == (
        "H001",
        "ICU",
        False,
    )
    await client.put("/v1/rules/big-drug/switches", json={"hospital_id": "H002", "enabled": False})
    async with rules_api.sessions() as db_session:
        in_force = await registry.rules_in_force(db_session=db_session)
    assert not in_force.switches.allows("big-drug", "H001", "ICU")
    assert in_force.switches.allows("big-drug", "H001", "CARD")
    assert not in_force.switches.allows("big-drug", "H002", "CARD")
    assert in_force.generation > before
    cleared = await client.delete(
        "/v1/rules/big-drug/switches", params={"hospital_id": "H001", "department": "ICU"}
    )
    assert cleared.status_code == 200
    detail = cleared.json()
    assert [(s["hospital_id"], s["department"]) for s in detail["switches"]] == [("H002", None)]
    assert [s["enabled"] for s in detail["switch_history"]] == [None, False, False]
    missing = await client.put(
        "/v1/rules/nothing/switches", json={"hospital_id": "H001", "enabled": False}
    )
    assert missing.status_code == 404


async def test_reload_reports_changes_and_refuses_a_change_without_a_new_version(
    rules_api: Api,
) -> None:
    client = rules_api.client
    path = rules_dir(rules_api) / "local.yaml"
    same = await client.post("/v1/rules/reload")
    assert same.status_code == 200
    assert same.json()["changed"] is False
    assert [c["action"] for c in same.json()["changes"]] == ["unchanged"]
    # changed, version not bumped: refused, nothing changes
    path.write_text(RULE_FILE.replace("severity: red", "severity: blue"), encoding="utf-8")
    refused = await client.post("/v1/rules/reload")
    assert refused.status_code == 422
    assert "local.yaml: rule big-drug: version:" in refused.json()["detail"]
    assert "bump its version" in refused.json()["detail"]
    assert (await client.get("/v1/rules/big-drug")).json()["severity"] == "red"
    # bumped: a new version from the file
    path.write_text(
        RULE_FILE.replace("severity: red", "severity: blue").replace(
            "version: 1\n    name", "version: 2\n    name"
        ),
        encoding="utf-8",
    )
    bumped = (await client.post("/v1/rules/reload")).json()
    assert bumped["changed"] is True
    assert [(c["rule_id"], c["action"], c["version"]) for c in bumped["changes"]] == [
        ("big-drug", "updated", 2)
    ]
    # changed through the API since: the file's older version is kept back, and said so
    rule = (await client.get("/v1/rules/big-drug")).json()["rule"]
    await client.put("/v1/rules/big-drug", json={"rule": {**rule, "severity": "yellow"}})
    kept = (await client.post("/v1/rules/reload")).json()
    [change] = kept["changes"]
    assert (change["action"], change["version"], change["file_version"]) == ("kept", 3, 2)
    assert "through the API" in change["message"]
    # a file rule no file holds any more is retired
    path.write_text("version: 1\nrules: []\n", encoding="utf-8")
    (await client.put("/v1/rules/big-drug", json={"rule": rule})).raise_for_status()
    (rules_dir(rules_api) / "other.yaml").write_text(
        RULE_FILE.replace("big-drug", "other-drug"), encoding="utf-8"
    )
    retired = (await client.post("/v1/rules/reload")).json()
    assert {c["rule_id"]: c["action"] for c in retired["changes"]} == {"other-drug": "added"}
    path.unlink()
    (rules_dir(rules_api) / "other.yaml").unlink()
    (rules_dir(rules_api) / "none.yaml").write_text("version: 1\nrules: []\n", encoding="utf-8")
    gone = (await client.post("/v1/rules/reload")).json()
    assert {c["rule_id"]: c["action"] for c in gone["changes"]} == {"other-drug": "retired"}
    listed = {i["rule_id"]: i["in_force"] for i in (await client.get("/v1/rules")).json()["items"]}
    # big-drug's newest version came through the API: the files do not retire it
    assert listed == {"big-drug": True, "other-drug": False}


async def test_dry_run_replays_open_cases_from_the_ledger(rules_api: Api) -> None:
    client = rules_api.client
    events = [
        admitted("dr-1", case_id="D1"),
        charge(
            "dr-2",
            case_id="D1",
            category="drug",
            item_code="DRUG9",
            quantity="2",
            unit_price="3000.00",
            amount="6000.00",
        ),
        admitted("dr-3", case_id="D2"),
        charge(
            "dr-4",
            case_id="D2",
            category="drug",
            item_code="DRUG1",
            quantity="1",
            unit_price="100.00",
            amount="100.00",
        ),
    ]
    accepted = await client.post("/v1/events", json={"events": events})
    assert accepted.status_code == 202, accepted.text
    states = {}
    now = datetime(2026, 3, 2, 2, tzinfo=UTC)
    for raw in events:
        state = states.setdefault(raw["case_id"], new_case("H001", raw["case_id"]))
        apply_event(state, parse_event(raw), PRICE_BOOK, now)
    await write_batch(
        rules_api.engine, rules_api.sessions, [s.to_dict() for s in states.values()], []
    )
    trial = {
        "name": {"zh": "药品单笔超 5000", "en": "Drug line over 5000"},
        "kind": "order_bound",
        "severity": "red",
        "enabled": False,
        "params": {"bounds": {"drug": {"max_amount": 5000}}},
    }
    response = await client.post("/v1/rules/dry-run", json={"rule": trial})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["rule_id"], body["kind"], body["cases_checked"], body["truncated"]) == (
        "dry-run",
        "order_bound",
        2,
        False,
    )
    [finding] = body["findings"]
    assert (finding["case_id"], finding["department"], finding["event_id"]) == (
        "D1",
        "CARD",
        "dr-2",
    )
    assert finding["detail"]["amount"] == "6000.00"
    assert "5000" in finding["text_en"] and "5000" in finding["text_zh"]
    bounded = (await client.post("/v1/rules/dry-run", json={"rule": trial, "limit": 1})).json()
    assert (bounded["cases_checked"], bounded["truncated"]) == (1, True)
    elsewhere = await client.post("/v1/rules/dry-run", json={"rule": trial, "hospital_id": "H002"})
    assert (elsewhere.json()["cases_checked"], elsewhere.json()["findings"]) == (0, [])
    # nothing was stored
    assert "dry-run" not in {i["rule_id"] for i in (await client.get("/v1/rules")).json()["items"]}


async def test_dry_run_of_a_department_rule_judges_the_current_month(rules_api: Api) -> None:
    """A department rule over the month so far of each department with discharged cases."""
    rules_api.app.dependency_overrides[get_now] = lambda: NOW
    async with rules_api.sessions() as db_session:
        await db_session.execute(
            insert(CaseRecord),
            [
                discharged("CARD", "2026-12-03T10:00:00", "3000.00"),  # low ratio
                discharged("CARD", "2026-12-04T10:00:00", "18000.00"),
                discharged("SURG", "2026-12-05T10:00:00", "19000.00"),
                discharged("SURG", "2026-11-28T10:00:00", "2000.00"),  # last month
            ],
        )
        await db_session.commit()
    low_share = {
        "name": {"zh": "低倍率占比", "en": "Low-ratio share"},
        "kind": "low_ratio_share",
        "severity": "yellow",
        "params": {"max_share": 0.25, "min_cases": 1},
    }
    response = await rules_api.client.post("/v1/rules/dry-run", json={"rule": low_share})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["period"], body["departments_checked"]) == (
        "low_ratio_share",
        "2026-12",
        2,
    )
    [finding] = body["findings"]
    assert (finding["hospital_id"], finding["department"], finding["case_id"]) == (
        "H001",
        "CARD",
        "",
    )
    assert finding["detail"]["low_ratio_cases"] == 1
    assert finding["detail"]["share"] == "0.5000"
    assert "CARD" in finding["text_en"] and "CARD" in finding["text_zh"]
    # nothing was raised or stored
    assert await rules_api.scalar("SELECT count(*) FROM alerts") == 0


async def test_two_imports_at_once_write_each_version_once(rules_api: Api) -> None:
    """The API and a worker importing the same new files at the same moment: one adds,
    the other finds it there; neither fails on the other's rows."""
    path = rules_dir(rules_api) / "local.yaml"
    path.write_text(RULE_FILE.replace("big-drug", "twice"), encoding="utf-8")
    moment = datetime(2026, 12, 1, tzinfo=UTC)

    async def importing(who: str) -> registry.ImportReport:
        async with rules_api.sessions() as db_session:
            report = await registry.import_rule_files(
                db_session=db_session, path=rules_dir(rules_api), changed_by=who, now=moment
            )
            await db_session.commit()
            return report

    reports = await asyncio.gather(*(importing(f"importer {n}") for n in range(4)))
    added = [r for r in reports if {c.action for c in r.changes} == {"added", "retired"}]
    assert len(added) == 1
    assert all({c.action for c in r.changes} == {"unchanged"} for r in reports if r not in added)
    versions = await rules_api.rows("SELECT rule_id, version FROM rule_versions ORDER BY id")
    assert [tuple(row) for row in versions] == [("big-drug", 1), ("twice", 1)]


async def test_a_start_import_the_registry_refuses_is_logged_and_the_rules_stay(
    rules_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A process starting with a rule file changed under the same version keeps the
    registry's rules in force and says why in its log; a good file is taken once."""
    path = rules_dir(rules_api) / "local.yaml"
    changed = RULE_FILE.replace("max_amount: 5000", "max_amount: 6000")
    path.write_text(changed, encoding="utf-8")
    await registry.import_at_start(
        rules_api.sessions, rules_dir(rules_api), changed_by="rule files (worker start)"
    )
    assert "bump its version" in caplog.text
    assert "the registry's rules stay" in caplog.text
    rows = await rules_api.rows(
        "SELECT rule_id, version, changed_by FROM rule_versions ORDER BY id"
    )
    assert [tuple(row) for row in rows] == [("big-drug", 1, "rule files (api start)")]

    path.write_text(changed.replace("    version: 1", "    version: 2"), encoding="utf-8")
    for _ in range(2):
        await registry.import_at_start(
            rules_api.sessions, rules_dir(rules_api), changed_by="rule files (worker start)"
        )
    rows = await rules_api.rows(
        "SELECT rule_id, version, changed_by FROM rule_versions ORDER BY id"
    )
    assert [tuple(row) for row in rows] == [
        ("big-drug", 1, "rule files (api start)"),
        ("big-drug", 2, "rule files (worker start)"),
    ]
