"""DRG catalogues as a hospital's insurance office meets them: the sample outranked by a
real catalogue, import reports and dry runs, partial imports refused unless they amend
or replace, implausible base rates, listing, viewing, withdrawing; "today" is the
hospital's local day (the clock is set: 02:05 on 1 December in Beijing)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.api.deps import get_now
from services.reference import service as catalogue_service
from services.storage.models import CaseRecord
from tests.api.conftest import Api

# 2026-11-30 18:05 UTC is 2026-12-01 02:05 in Beijing
NOW = datetime(2026, 11, 30, 18, 5, tzinfo=UTC)
TODAY = "2026-12-01"

REAL_2025: dict[str, Any] = {
    "name": "Province 2025",
    "effective_from": "2025-01-01",
    "base_rates": {"employee": "11000.00", "resident": "9000.00"},
    "groups": [
        {"drg_code": "FM15", "name": "PCI with stent", "weight": "3.1000", "avg_los_days": "7"},
        {"drg_code": "GB21", "name": "Bowel procedures, MCC", "weight": "5.5000"},
        {"drg_code": "GB23", "name": "Bowel procedures, CC", "weight": "4.4000"},
        {"drg_code": "ES23", "name": "Pleural effusion, CC", "weight": "1.1000"},
    ],
}


@pytest.fixture(autouse=True)
def beijing_clock(api: Api) -> Iterator[None]:
    async def now() -> datetime:
        return NOW

    api.app.dependency_overrides[get_now] = now
    yield
    api.app.dependency_overrides.clear()


async def version(api: Api) -> int:
    return int(await api.scalar("SELECT version FROM reference_version WHERE id = 1"))


async def load_sample(api: Api) -> int:
    """What `drgwatch up` does to a database with no catalogue."""
    async with api.sessions() as db_session:
        assert await catalogue_service.load_sample(db_session=db_session)
        await db_session.commit()
    return int(await api.scalar("SELECT id FROM drg_catalogues WHERE sample"))


async def open_cases(api: Api, *cases: tuple[str, str | None, str, str, str]) -> None:
    """Cases in the projection: (case_id, drg_code, scheme, admitted_at, status)."""
    async with api.sessions() as db_session:
        for case_id, drg_code, scheme, admitted_at, status in cases:
            moment = datetime.fromisoformat(admitted_at)
            db_session.add(
                CaseRecord(
                    hospital_id="H001",
                    case_id=case_id,
                    status=status,
                    department="CARD",
                    drg_code=drg_code,
                    insurance_scheme=scheme,
                    total_cost=Decimal("100.00"),
                    level="none",
                    cost_by_category={},
                    top_contributors=[],
                    admitted_at=moment,
                    utc_offset_minutes=int(moment.utcoffset().total_seconds()) // 60,  # type: ignore[union-attr]
                    events_applied=1,
                    updated_at=NOW,
                )
            )
        await db_session.commit()


async def post(api: Api, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await api.client.post("/v1/drg-catalogues", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_real_catalogue_outranks_the_sample_and_the_import_says_what_it_does(
    api: Api,
) -> None:
    sample_id = await load_sample(api)
    await open_cases(
        api,
        ("A", "FM15", "employee", "2026-03-02T08:00:00+08:00", "open"),  # sample -> real
        ("B", "BR21", "employee", "2026-03-02T08:00:00+08:00", "open"),  # only in the sample
        # 00:30 on 1 January 2025 in Beijing: the real catalogue's first day (UTC: 2024)
        ("C", "FM15", "resident", "2025-01-01T00:30:00+08:00", "open"),
        ("D", "FM15", "employee", "2026-03-02T08:00:00+08:00", "discharged"),
        ("E", "FM15", "employee", "2024-12-31T08:00:00+08:00", "open"),  # before both
    )
    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert (group["catalogue_id"], group["sample"], group["on"]) == (sample_id, True, TODAY)

    dry = await post(api, {**REAL_2025, "dry_run": True}, status=200)
    assert await version(api) == 1  # the sample's import only
    assert await api.scalar("SELECT count(*) FROM drg_catalogues") == 1
    stored = await post(api, REAL_2025)
    assert await version(api) == 2

    for report in (dry, stored):
        assert report["today"] == TODAY
        assert report["based_on"] is None  # the sample is never the catalogue in force
        assert report["group_count"] == 4 and report["mode"] == "full"
        assert report["changes"] == {"added": 4, "changed": 0, "unchanged": 0, "withdrawn": 0}
        assert report["in_force_today"]["name"] == "Province 2025"
        assert report["in_force_today"]["sample"] is False
        assert report["impact"] == {
            "open_cases": 4,
            "repriced": 2,  # A (sample -> real) and C (unpriced -> real)
            "standard_changed": 2,
            "unpriced": 2,  # B (not in the real catalogue) and E (admitted before it)
            "newly_unpriced": 1,  # B
        }
    assert (dry["dry_run"], dry["catalogue_id"], dry["in_force_today"]["catalogue_id"]) == (
        True,
        None,
        None,
    )
    assert stored["dry_run"] is False
    assert stored["in_force_today"]["catalogue_id"] == stored["catalogue_id"]

    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert (group["catalogue_id"], group["sample"]) == (stored["catalogue_id"], False)
    assert group["standard_costs"] == {"employee": "34100.00", "resident": "27900.00"}
    assert (await api.client.get("/v1/drg-catalogues/current/groups/BR21")).status_code == 404

    listed = (await api.client.get("/v1/drg-catalogues")).json()
    assert listed["today"] == TODAY
    assert [
        (item["catalogue_id"], item["sample"], item["in_force_today"], item["group_count"])
        for item in listed["items"]
    ] == [(stored["catalogue_id"], False, True, 4), (sample_id, True, False, 448)]
    assert listed["items"][0]["created_by"] == "local (embedded mode)"


async def test_up_loads_the_sample_only_into_a_database_with_no_catalogue(api: Api) -> None:
    await post(api, REAL_2025)
    async with api.sessions() as db_session:
        assert not await catalogue_service.load_sample(db_session=db_session)
    assert await api.scalar("SELECT count(*) FROM drg_catalogues WHERE sample") == 0


async def test_a_partial_import_is_refused_unless_it_amends_or_replaces(api: Api) -> None:
    real = await post(api, REAL_2025)
    await open_cases(
        api,
        ("A", "FM15", "employee", "2026-11-02T08:00:00+08:00", "open"),
        ("B", "GB21", "employee", "2026-11-02T08:00:00+08:00", "open"),
    )
    one_group: dict[str, Any] = {
        "name": "FM15 revised",
        "effective_from": "2026-11-01",
        "groups": [{"drg_code": "FM15", "name": "PCI with stent", "weight": "3.3000"}],
    }

    response = await api.client.post("/v1/drg-catalogues", json=one_group)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("groups: this import lacks 3 of the 4 groups of the catalogue")
    assert "ES23, GB21, GB23" in detail
    assert '"mode": "amend"' in detail and '"mode": "replace"' in detail
    assert await api.scalar("SELECT count(*) FROM drg_catalogues") == 1
    assert await version(api) == 1

    amended = await post(api, {**one_group, "mode": "amend"})
    assert amended["based_on"]["catalogue_id"] == real["catalogue_id"]
    assert amended["group_count"] == 4
    assert amended["base_rates"] == REAL_2025["base_rates"]  # kept: none given
    assert amended["changes"] == {"added": 0, "changed": 1, "unchanged": 3, "withdrawn": 0}
    # A's standard changes (3.1 -> 3.3), B is priced by the new version at the same standard
    assert amended["impact"] == {
        "open_cases": 2,
        "repriced": 2,
        "standard_changed": 1,
        "unpriced": 0,
        "newly_unpriced": 0,
    }
    gb21 = (await api.client.get("/v1/drg-catalogues/current/groups/GB21")).json()
    assert gb21["catalogue_id"] == amended["catalogue_id"]
    fm15 = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert fm15["standard_costs"]["employee"] == "36300.00"
    detail_of = (await api.client.get(f"/v1/drg-catalogues/{amended['catalogue_id']}")).json()
    assert (detail_of["import_mode"], detail_of["based_on_id"]) == ("amend", real["catalogue_id"])

    replaced = await post(
        api,
        {**one_group, "mode": "replace", "base_rates": {"employee": "11000.00"}, "name": "r"},
    )
    assert replaced["group_count"] == 1
    assert replaced["changes"]["withdrawn"] == 3
    assert replaced["impact"]["newly_unpriced"] == 1  # B: GB21 is withdrawn
    assert (await api.client.get("/v1/drg-catalogues/current/groups/GB21")).status_code == 404


async def test_amending_with_nothing_in_force_is_refused(api: Api) -> None:
    await load_sample(api)
    body = {**REAL_2025, "mode": "amend"}
    response = await api.client.post("/v1/drg-catalogues", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("mode: there is no catalogue in force on")


@pytest.mark.parametrize("rate", ["1", "12.25", "1225270.00"])
async def test_implausible_base_rates_are_refused_naming_the_scheme(api: Api, rate: str) -> None:
    body = {**REAL_2025, "base_rates": {"employee": "11000.00", "resident": rate}}
    response = await api.client.post("/v1/drg-catalogues", json=body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "base_rates.resident"
    assert "not a plausible base rate" in error["reason"]
    assert "1,000 to 100,000" in error["reason"]
    assert await api.scalar("SELECT count(*) FROM drg_catalogues") == 0


async def test_in_force_today_is_the_hospitals_local_day(api: Api) -> None:
    await post(api, REAL_2025)
    december = await post(
        api, {**REAL_2025, "name": "From 1 December", "effective_from": "2026-12-01"}
    )
    assert december["in_force_today"]["catalogue_id"] == december["catalogue_id"]
    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert (group["catalogue_name"], group["on"]) == ("From 1 December", "2026-12-01")
    current = (await api.client.get("/v1/drg-catalogues/current")).json()
    assert current["catalogue_id"] == december["catalogue_id"]

    # the same moment for a hospital whose day is the UTC day is still 30 November
    settings = api.app.state.settings
    api.app.state.settings = settings.model_copy(update={"timezone": "UTC"})
    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert (group["catalogue_name"], group["on"]) == ("Province 2025", "2026-11-30")
    listed = (await api.client.get("/v1/drg-catalogues")).json()
    assert [item["in_force_today"] for item in listed["items"]] == [False, True]


async def test_a_catalogue_is_viewed_with_its_groups_page_by_page(api: Api) -> None:
    stored = await post(api, REAL_2025)
    path = f"/v1/drg-catalogues/{stored['catalogue_id']}"
    first = (await api.client.get(path, params={"limit": 3})).json()
    assert first["name"] == "Province 2025" and first["group_count"] == 4
    assert first["in_force_today"] is True and first["withdrawn"] is False
    assert [g["drg_code"] for g in first["groups"]["items"]] == ["ES23", "FM15", "GB21"]
    assert first["groups"]["items"][1]["standard_costs"] == {
        "employee": "34100.00",
        "resident": "27900.00",
    }
    cursor = first["groups"]["next_cursor"]
    second = (await api.client.get(path, params={"limit": 3, "cursor": cursor})).json()
    assert [g["drg_code"] for g in second["groups"]["items"]] == ["GB23"]
    assert second["groups"]["next_cursor"] is None
    assert (await api.client.get("/v1/drg-catalogues/999")).status_code == 404
    assert (await api.client.get("/v1/drg-catalogues/0")).status_code == 422
    bad = await api.client.get(path, params={"cursor": "nonsense"})
    assert bad.status_code == 400, bad.text


async def test_withdrawal_keeps_history_prices_nothing_and_has_workers_reprice(
    api: Api,
) -> None:
    sample_id = await load_sample(api)
    real = await post(api, REAL_2025)
    await open_cases(api, ("A", "FM15", "employee", "2026-03-02T08:00:00+08:00", "open"))
    path = f"/v1/drg-catalogues/{real['catalogue_id']}/withdraw"
    assert await version(api) == 2

    dry = await api.client.post(path, json={"dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["catalogue"]["withdrawn"] is False
    assert await version(api) == 2

    response = await api.client.post(path, json={"reason": "wrong weights from the province"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert await version(api) == 3  # each worker reloads and prices its open cases again
    for result in (dry.json(), report):
        assert result["in_force_today"]["catalogue_id"] == sample_id  # the sample again
        assert result["impact"]["repriced"] == 1 and result["impact"]["standard_changed"] == 1
    withdrawn = report["catalogue"]
    assert (withdrawn["withdrawn"], withdrawn["in_force_today"]) == (True, False)
    assert withdrawn["withdrawn_reason"] == "wrong weights from the province"
    assert withdrawn["withdrawn_by"] == "local (embedded mode)"

    # what the workers load no longer holds it; the history still does
    async with api.sessions() as db_session:
        book = await catalogue_service.load_price_book(db_session=db_session)
    assert [c.catalogue_id for c in book.catalogues] == [sample_id]
    assert book.version == 3
    viewed = (await api.client.get(f"/v1/drg-catalogues/{real['catalogue_id']}")).json()
    assert viewed["withdrawn"] is True and len(viewed["groups"]["items"]) == 4
    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert group["catalogue_id"] == sample_id
    listed = (await api.client.get("/v1/drg-catalogues", params={"withdrawn": "false"})).json()
    assert [item["catalogue_id"] for item in listed["items"]] == [sample_id]

    again = await api.client.post(path, json={})
    assert again.status_code == 409, again.text
    assert "withdrawn on" in again.json()["detail"]
    assert (await api.client.post("/v1/drg-catalogues/999/withdraw")).status_code == 404
    assert await version(api) == 3


async def test_thresholds_are_listed_and_removed(api: Api) -> None:
    for body in (
        {"hospital_id": "H001", "drg_code": "FM15", "blue": "0.85", "yellow": "0.9", "red": "1"},
        {"blue": "0.8", "yellow": "0.9", "red": "1.0"},
    ):
        assert (await api.client.put("/v1/alert-thresholds", json=body)).status_code == 200
    listed = (await api.client.get("/v1/alert-thresholds")).json()
    assert [(t["hospital_id"], t["drg_code"], t["blue"]) for t in listed["items"]] == [
        ("*", "*", "0.8000"),
        ("H001", "FM15", "0.8500"),
    ]
    assert listed["default"] == {
        "hospital_id": "*",
        "drg_code": "*",
        "blue": "0.9000",
        "yellow": "0.9500",
        "red": "1.0000",
        "updated_at": None,
    }
    page = (await api.client.get("/v1/alert-thresholds", params={"limit": 1})).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = await api.client.get(
        "/v1/alert-thresholds", params={"limit": 1, "cursor": page["next_cursor"]}
    )
    assert [t["hospital_id"] for t in rest.json()["items"]] == ["H001"]
    assert await version(api) == 2

    removed = await api.client.delete(
        "/v1/alert-thresholds", params={"hospital_id": "H001", "drg_code": "FM15"}
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["red"] == "1.0000"
    assert await version(api) == 3
    again = await api.client.delete(
        "/v1/alert-thresholds", params={"hospital_id": "H001", "drg_code": "FM15"}
    )
    assert again.status_code == 404
    unnamed = await api.client.delete("/v1/alert-thresholds", params={"hospital_id": "H001"})
    assert unnamed.status_code == 422
    assert "query.drg_code" in {e["field"] for e in unnamed.json()["errors"]}
    assert await version(api) == 3
    remaining = (await api.client.get("/v1/alert-thresholds")).json()["items"]
    assert [(t["hospital_id"], t["drg_code"]) for t in remaining] == [("*", "*")]


async def test_workers_reload_after_a_withdrawal_and_price_without_it(api: Api) -> None:
    """What each worker does on its reference poll (services/alerting/worker.py): a
    changed version reloads the price book, and the worker then sends every open case a
    reprice command, which prices it with the new book."""
    from services.alerting.worker import ReferenceData

    real = await post(api, REAL_2025)
    reference = ReferenceData(api.sessions)
    assert await reference.refresh() is False  # the first load is no change
    march = datetime(2026, 3, 2).date()
    assert reference.price_book.standard("H001", "FM15", "employee", march) is not None

    path = f"/v1/drg-catalogues/{real['catalogue_id']}/withdraw"
    assert (await api.client.post(path, json={"dry_run": True})).status_code == 200
    assert await reference.refresh() is False  # a dry run changes nothing
    assert (await api.client.post(path, json={})).status_code == 200
    assert await reference.refresh() is True  # -> reprice commands for the open cases
    assert reference.price_book.catalogues == ()
    assert reference.price_book.standard("H001", "FM15", "employee", march) is None


BILINGUAL: dict[str, Any] = {
    "name": "Province 2026",
    "effective_from": "2026-01-01",
    "base_rates": {"employee": "11000.00", "resident": "9000.00"},
    "groups": [
        {
            "drg_code": "FM15",
            "name": "经皮冠状动脉支架植入，不伴并发症或合并症",
            "name_en": "Percutaneous coronary intervention with stent, without CC",
            "weight": "3.1000",
        },
        {"drg_code": "ES23", "name": "胸腔积液，伴一般并发症或合并症", "weight": "1.1000"},
    ],
}


async def test_groups_keep_the_english_name_an_import_gives_and_cases_show_it(
    api: Api,
) -> None:
    stored = await post(api, BILINGUAL)
    groups = (await api.client.get(f"/v1/drg-catalogues/{stored['catalogue_id']}")).json()
    assert [(g["drg_code"], g["name_en"]) for g in groups["groups"]["items"]] == [
        ("ES23", None),
        ("FM15", "Percutaneous coronary intervention with stent, without CC"),
    ]
    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert group["name"] == "经皮冠状动脉支架植入，不伴并发症或合并症"
    assert group["name_en"] == "Percutaneous coronary intervention with stent, without CC"
    assert (await api.client.get("/v1/drg-catalogues/current/groups/ES23")).json()[
        "name_en"
    ] is None

    # a case shows its group's English name beside the catalogue's, where there is one
    await open_cases(
        api,
        ("C-FM15", "FM15", "employee", "2026-11-30T09:00:00+08:00", "open"),
        ("C-ES23", "ES23", "employee", "2026-11-30T09:00:00+08:00", "open"),
        ("C-NONE", None, "employee", "2026-11-30T09:00:00+08:00", "open"),
    )
    async with api.sessions() as db_session:
        for case_id, group in (("C-FM15", 0), ("C-ES23", 1)):
            record = await db_session.get(CaseRecord, ("H001", case_id))
            assert record is not None
            record.drg_name = BILINGUAL["groups"][group]["name"]
        await db_session.commit()
    case = (await api.client.get("/v1/hospitals/H001/cases/C-FM15")).json()
    assert case["drg_name"] == "经皮冠状动脉支架植入，不伴并发症或合并症"
    assert case["drg_name_en"] == "Percutaneous coronary intervention with stent, without CC"
    listed = (await api.client.get("/v1/hospitals/H001/cases")).json()["items"]
    assert [(c["case_id"], c["drg_name_en"]) for c in listed] == [
        ("C-ES23", None),
        ("C-FM15", "Percutaneous coronary intervention with stent, without CC"),
        ("C-NONE", None),
    ]

    # an amendment that drops the English name takes it away from groups and cases alike
    amended = {**BILINGUAL, "mode": "amend", "effective_from": "2026-06-01", "base_rates": {}}
    amended["groups"] = [{k: v for k, v in BILINGUAL["groups"][0].items() if k != "name_en"}]
    report = await post(api, amended)
    assert report["changes"] == {"added": 0, "changed": 1, "unchanged": 1, "withdrawn": 0}
    assert (await api.client.get("/v1/hospitals/H001/cases/C-FM15")).json()["drg_name_en"] is None


async def test_the_sample_names_its_groups_in_chinese_and_keeps_the_english(api: Api) -> None:
    await load_sample(api)
    group = (await api.client.get("/v1/drg-catalogues/current/groups/FM15")).json()
    assert group["sample"] is True
    assert group["name"] == "经皮冠状动脉支架植入，不伴并发症或合并症"
    assert group["name_en"] == (
        "Percutaneous coronary intervention with stent, without complications or comorbidities"
    )


def test_a_csv_names_its_groups_in_english_only_where_it_has_the_column() -> None:
    plain = catalogue_service.groups_from_csv(
        "drg_code,name,weight,avg_los_days,standard_cost\nES23,胸腔积液,1.1000,11.5,\n"
    )
    assert [(g.name, g.name_en) for g in plain] == [("胸腔积液", None)]
    bilingual = catalogue_service.groups_from_csv(
        "drg_code,name,name_en,weight\n"
        "ES23,胸腔积液,Pleural effusion,1.1000\n"
        'FM15,经皮冠状动脉支架植入,"",3.1000\n'
    )
    assert [(g.drg_code, g.name, g.name_en) for g in bilingual] == [
        ("ES23", "胸腔积液", "Pleural effusion"),
        ("FM15", "经皮冠状动脉支架植入", None),
    ]


async def test_groups_keep_the_regions_mean_cost_and_their_own_ratio_limits(api: Api) -> None:
    body = {
        **BILINGUAL,
        "groups": [
            {
                **BILINGUAL["groups"][0],
                "mean_cost": "36000.00",
                "high_ratio": "3",
                "low_ratio": "0.3",
            },
            BILINGUAL["groups"][1],
        ],
    }
    stored = await post(api, body)

    groups = (await api.client.get(f"/v1/drg-catalogues/{stored['catalogue_id']}")).json()
    assert [
        (g["drg_code"], g["mean_cost"], g["high_ratio"], g["low_ratio"])
        for g in groups["groups"]["items"]
    ] == [("ES23", None, None, None), ("FM15", "36000.00", "3.0000", "0.3000")]
    async with api.sessions() as db_session:
        book = await catalogue_service.load_price_book(db_session=db_session)
    fm15 = book.group("H001", "FM15", date(2026, 3, 1))
    assert fm15 is not None
    assert (fm15.mean_cost, fm15.high_ratio, fm15.low_ratio) == (
        Decimal("36000.00"),
        Decimal("3.0000"),
        Decimal("0.3000"),
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("high_ratio", "1"), ("high_ratio", "0.5"), ("low_ratio", "1"), ("mean_cost", "0")],
)
async def test_ratio_limits_and_mean_costs_out_of_range_are_refused(
    api: Api, field: str, value: str
) -> None:
    body = {**BILINGUAL, "groups": [{**BILINGUAL["groups"][0], field: value}]}
    refused = await post(api, body, status=422)
    assert any(field in error["field"] for error in refused["errors"]), refused


def test_a_csv_may_give_the_mean_cost_and_the_ratio_limits() -> None:
    groups = catalogue_service.groups_from_csv(
        "drg_code,name,weight,mean_cost,high_ratio,low_ratio\n"
        "ES23,胸腔积液,1.1000,14200.50,2.5,0.35\n"
        "FM15,经皮冠状动脉支架植入,3.1000,,,\n"
    )
    assert [(g.drg_code, g.mean_cost, g.high_ratio, g.low_ratio) for g in groups] == [
        ("ES23", Decimal("14200.50"), Decimal("2.5"), Decimal("0.35")),
        ("FM15", None, None, None),
    ]
