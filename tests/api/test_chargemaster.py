"""The chargemaster over HTTP: import and its refusals, versions valid from a date, list,
search and one item, each role's access, and the pre-check that prices proposed items
from it and lists cheaper equivalents with where the case would land (exact money).

On the real PostgreSQL and on a SQLite file, where money is stored as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.access import service as access_service
from services.alerting.projector import write_batch
from services.api.deps import forget_reference, get_now
from services.reference.chargemaster import service as chargemaster_service
from tests.api.conftest import Api
from tests.api.corefactory import FM15_EMPLOYEE, CaseBuilder

# 09:00 in Beijing on 1 December 2026: the hospitals' day is 1 December
CLOCK = {"now": datetime(2026, 12, 1, 1, 0, tzinfo=UTC)}


async def now() -> datetime:
    return CLOCK["now"]


@pytest.fixture
def any_api(any_api: Api) -> Api:
    """The app on PostgreSQL, or on a SQLite file, on the tests' clock."""
    CLOCK["now"] = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    any_api.app.dependency_overrides[get_now] = now
    return any_api


def item(code: str, price: str, group: str | None = None, **more: str) -> dict[str, Any]:
    entry = {
        "item_code": code,
        "name": more.pop("name", f"项目 {code}"),
        "category": more.pop("category", "consumable"),
        "unit_price": price,
    }
    if group is not None:
        entry["equivalence_group"] = group
    return entry | more


STENTS_2026 = {
    "name": "省医疗服务价格 2026",
    "valid_from": "2026-01-01",
    "items": [
        item("C-STENT-IMP", "11800.00", "DES", name="进口药物洗脱支架", unit="个"),
        item("C-STENT-DOM", "770.00", "DES", name="国产药物洗脱支架", unit="个"),
        item("C-STENT-DOM2", "848.00", "DES", name="国产药物洗脱支架（铂铬）", unit="个"),
        item("D-ATOR-BR", "6.8500", "ATOR20", name="阿托伐他汀钙片（原研）", category="drug"),
        item("D-ATOR-GEN", "0.1800", "ATOR20", name="阿托伐他汀钙片（仿制）", category="drug"),
        item("L-CBC", "20.00", name="血常规", category="lab"),
    ],
}


async def imported(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post("/v1/chargemasters", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def case_at(api: Api, amount: str, hospital: str = "H001", case_id: str = "C1") -> None:
    case = CaseBuilder(hospital, case_id).admit().cost(amount, category="drug", item_code="D001")
    await write_batch(api.engine, api.sessions, [case.to_dict()], [])


async def precheck(api: Api, *items: dict[str, Any], case: str = "H001/cases/C1") -> Any:
    return await api.client.post(f"/v1/hospitals/{case}/precheck", json={"items": list(items)})


# --- import, versions, reads ---------------------------------------------------------------


async def test_an_import_is_a_version_and_its_items_are_read_back(any_api: Api) -> None:
    report = await imported(any_api, STENTS_2026)
    stored = report["chargemaster"]
    assert stored["item_count"] == 6 and stored["valid_today"] is True
    assert stored["sample"] is False and stored["hospital_id"] is None
    assert report["equivalence_groups"] == 2 and report["today"] == "2026-12-01"
    assert report["valid_today"]["chargemaster_id"] == stored["chargemaster_id"]

    one = (await any_api.client.get("/v1/chargemasters/current/items/C-STENT-IMP")).json()
    assert one["unit_price"] == "11800.00" and one["name"] == "进口药物洗脱支架"
    assert one["category"] == "consumable" and one["unit"] == "个"
    assert [(e["item_code"], e["unit_price"]) for e in one["equivalents"]] == [
        ("C-STENT-DOM", "770.00"),
        ("C-STENT-DOM2", "848.00"),
    ]
    # the same through the short path
    short = await any_api.client.get("/v1/chargemaster/items/D-ATOR-BR")
    assert short.status_code == 200 and short.json()["unit_price"] == "6.85"
    missing = await any_api.client.get("/v1/chargemaster/items/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]


async def test_items_are_listed_by_code_searched_and_paged(any_api: Api) -> None:
    await imported(any_api, STENTS_2026)
    first = (await any_api.client.get("/v1/chargemaster", params={"limit": 4})).json()
    assert [i["item_code"] for i in first["items"]] == [
        "C-STENT-DOM",
        "C-STENT-DOM2",
        "C-STENT-IMP",
        "D-ATOR-BR",
    ]
    rest = await any_api.client.get(
        "/v1/chargemaster", params={"limit": 4, "cursor": first["next_cursor"]}
    )
    assert [i["item_code"] for i in rest.json()["items"]] == ["D-ATOR-GEN", "L-CBC"]
    assert rest.json()["next_cursor"] is None
    found = await any_api.client.get("/v1/chargemasters/current/items", params={"q": "阿托伐他汀"})
    assert [i["item_code"] for i in found.json()["items"]] == ["D-ATOR-BR", "D-ATOR-GEN"]
    by_code = await any_api.client.get("/v1/chargemaster", params={"q": "stent-dom"})
    assert [i["item_code"] for i in by_code.json()["items"]] == ["C-STENT-DOM", "C-STENT-DOM2"]
    labs = await any_api.client.get("/v1/chargemaster", params={"category": "lab"})
    assert [i["item_code"] for i in labs.json()["items"]] == ["L-CBC"]
    group = await any_api.client.get("/v1/chargemaster", params={"equivalence_group": "DES"})
    assert len(group.json()["items"]) == 3


async def test_versions_stay_and_each_prices_the_days_from_its_valid_from(any_api: Api) -> None:
    first = await imported(any_api, STENTS_2026)
    later = {
        **STENTS_2026,
        "name": "省医疗服务价格 2027",
        "valid_from": "2027-01-01",
        "items": [item("C-STENT-IMP", "9800.00", "DES"), item("C-STENT-DOM", "700.00", "DES")],
    }
    second = await imported(any_api, later)
    assert second["chargemaster"]["valid_today"] is False
    assert second["valid_today"]["chargemaster_id"] == first["chargemaster"]["chargemaster_id"]

    path = "/v1/chargemasters/current/items/C-STENT-IMP"
    assert (await any_api.client.get(path)).json()["unit_price"] == "11800.00"
    on_2027 = (await any_api.client.get(path, params={"on": "2027-01-01"})).json()
    assert on_2027["unit_price"] == "9800.00"
    assert on_2027["chargemaster"]["chargemaster_id"] == second["chargemaster"]["chargemaster_id"]
    gone_in_2027 = await any_api.client.get(
        "/v1/chargemasters/current/items/L-CBC", params={"on": "2027-01-01"}
    )
    assert gone_in_2027.status_code == 404
    before_any = await any_api.client.get(path, params={"on": "2025-12-31"})
    assert before_any.status_code == 404
    assert "no chargemaster is valid on 2025-12-31" in before_any.json()["detail"]

    listed = (await any_api.client.get("/v1/chargemasters")).json()
    assert [(c["name"], c["valid_today"], c["item_count"]) for c in listed["items"]] == [
        ("省医疗服务价格 2027", False, 2),
        ("省医疗服务价格 2026", True, 6),
    ]
    # the year turns in Beijing: the 2027 version prices from its first local day
    CLOCK["now"] = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert (await any_api.client.get(path)).json()["unit_price"] == "9800.00"


async def test_a_hospitals_own_version_outranks_the_shared_one_for_it_only(any_api: Api) -> None:
    await imported(any_api, STENTS_2026)
    own = {
        "name": "H001 价格",
        "valid_from": "2026-06-01",
        "hospital_id": "H001",
        "items": [item("C-STENT-IMP", "11000.00", "DES"), item("C-STENT-DOM", "760.00", "DES")],
    }
    await imported(any_api, own)
    path = "/v1/chargemasters/current/items/C-STENT-IMP"
    h001 = (await any_api.client.get(path, params={"hospital_id": "H001"})).json()
    assert h001["unit_price"] == "11000.00" and h001["chargemaster"]["hospital_id"] == "H001"
    h002 = (await any_api.client.get(path, params={"hospital_id": "H002"})).json()
    assert h002["unit_price"] == "11800.00"
    assert (await any_api.client.get(path)).json()["unit_price"] == "11800.00"


async def test_the_sample_is_loaded_once_and_outranked_by_any_real_one(any_api: Api) -> None:
    async with any_api.sessions() as db_session:
        assert await chargemaster_service.load_sample(db_session=db_session) is True
        assert await chargemaster_service.load_sample(db_session=db_session) is False
        await db_session.commit()
    stent = (await any_api.client.get("/v1/chargemaster/items/C-STENT-IMP")).json()
    assert stent["chargemaster"]["sample"] is True
    assert "SAMPLE" in stent["chargemaster"]["name"]
    assert {e["item_code"] for e in stent["equivalents"]} == {"C-STENT-DOM", "C-STENT-DOM2"}
    for code, name_part in (
        ("D-ATOR20-BRAND", "阿托伐他汀"),
        ("D-CLOP75-BRAND", "氯吡格雷"),
        ("C-HIP-IMP", "髋关节"),
        ("C-KNEE-IMP", "膝关节"),
    ):
        found = (await any_api.client.get(f"/v1/chargemaster/items/{code}")).json()
        assert name_part in found["name"] and found["equivalents"], found
        price = Decimal(found["unit_price"])
        assert all(Decimal(e["unit_price"]) < price for e in found["equivalents"]), found
    # a real one valid from an earlier date still outranks the sample
    await imported(any_api, {**STENTS_2026, "valid_from": "2025-01-01"})
    stent = (await any_api.client.get("/v1/chargemaster/items/C-STENT-IMP")).json()
    assert stent["chargemaster"]["sample"] is False


async def test_an_import_is_refused_whole_naming_each_item_and_field(any_api: Api) -> None:
    bad = {
        "name": "bad",
        "valid_from": "2026-01-01",
        "items": [
            item("OK-1", "10.00"),
            item("BAD PRICE", "12.345678"),
            item("NEG", "-1.00"),
            item("FLOAT", 3.5),  # type: ignore[arg-type]
            {**item("CAT", "1.00"), "category": "gadget"},
        ],
    }
    response = await any_api.client.post("/v1/chargemasters", json=bad)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {
        "items.1.item_code",
        "items.1.unit_price",
        "items.2.unit_price",
        "items.3.unit_price",
        "items.4.category",
    } <= fields
    mixed = {
        "name": "mixed group",
        "valid_from": "2026-01-01",
        "items": [
            item("A", "1.00", "G"),
            item("B", "2.00", "G", category="drug"),
            item("A", "3.00"),
        ],
    }
    refused = await any_api.client.post("/v1/chargemasters", json=mixed)
    assert refused.status_code == 422
    reason = refused.json()["errors"][0]["reason"]
    assert "items[1]: category drug differs from consumable of A" in reason
    assert "items[2]: item_code A appears before, at item 0" in reason
    assert await any_api.scalar("SELECT count(*) FROM chargemasters") == 0
    assert await any_api.scalar("SELECT count(*) FROM chargemaster_items") == 0


# --- the pre-check ---------------------------------------------------------------------------


async def test_precheck_prices_from_the_chargemaster_and_lists_cheaper_equivalents(
    any_api: Api,
) -> None:
    await imported(any_api, STENTS_2026)
    await case_at(any_api, "30000.00")
    response = await precheck(
        any_api,
        {"item_code": "C-STENT-IMP", "quantity": "1"},
        {"item_code": "D-ATOR-BR", "quantity": "30"},
        {"item_code": "L-CBC", "quantity": "1", "unit_price": "25.00"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # 11800.00 + 30 x 6.8500 + 25.00 (as given, not the chargemaster's 20.00)
    assert body["added_cost"] == "12030.50"
    assert body["standard_cost"] == str(FM15_EMPLOYEE)
    assert body["projected"] == {"total_cost": "42030.50", "ratio": "1.0403", "level": "red"}
    assert body["chargemaster"]["name"] == "省医疗服务价格 2026"
    stent, statin, blood = body["items"]
    assert (stent["unit_price"], stent["amount"], stent["price_source"]) == (
        "11800.00",
        "11800.00",
        "chargemaster",
    )
    assert stent["category"] == "consumable" and stent["item_name"] == "进口药物洗脱支架"
    assert stent["alternatives"] == [
        {
            "item_code": "C-STENT-DOM",
            "item_name": "国产药物洗脱支架",
            "unit_price": "770.00",
            "saving": "11030.00",
            "landing": {"total_cost": "31000.50", "ratio": "0.7673", "level": "none"},
        },
        {
            "item_code": "C-STENT-DOM2",
            "item_name": "国产药物洗脱支架（铂铬）",
            "unit_price": "848.00",
            "saving": "10952.00",
            "landing": {"total_cost": "31078.50", "ratio": "0.7693", "level": "none"},
        },
    ]
    assert statin["amount"] == "205.50" and statin["category"] == "drug"
    assert statin["alternatives"] == [
        {
            "item_code": "D-ATOR-GEN",
            "item_name": "阿托伐他汀钙片（仿制）",
            "unit_price": "0.18",
            "saving": "200.10",
            "landing": {"total_cost": "41830.40", "ratio": "1.0354", "level": "red"},
        }
    ]
    assert blood["price_source"] == "request" and blood["category"] == "lab"
    assert blood["alternatives"] == []
    # nothing was written
    stored = await any_api.scalar("SELECT total_cost FROM cases WHERE case_id = 'C1'")
    assert Decimal(str(stored)) == Decimal("30000.00")


async def test_a_cheaper_equivalent_at_the_blue_line_is_levelled_exactly(any_api: Api) -> None:
    """Blue is reached at 0.90 x 40400.83 = 36360.747: 36360.75 is blue, 36360.74 is not,
    though both ratios round to 0.9000."""
    body = {
        "name": "edge",
        "valid_from": "2026-01-01",
        "items": [
            item("X-IMP", "3500.00", "X"),
            item("X-DOM", "3180.375", "X"),
            item("X-DOM2", "3180.37", "X"),
            item("X-DEAR", "3600.00", "X"),
        ],
    }
    await imported(any_api, body)
    await case_at(any_api, "30000.00")
    response = await precheck(any_api, {"item_code": "X-IMP", "quantity": "2"})
    result = response.json()
    assert result["projected"] == {"total_cost": "37000.00", "ratio": "0.9158", "level": "blue"}
    assert result["items"][0]["alternatives"] == [
        {
            "item_code": "X-DOM2",
            "item_name": "项目 X-DOM2",
            "unit_price": "3180.37",
            "saving": "639.26",
            "landing": {"total_cost": "36360.74", "ratio": "0.9000", "level": "none"},
        },
        {
            "item_code": "X-DOM",
            "item_name": "项目 X-DOM",
            "unit_price": "3180.375",
            "saving": "639.25",
            "landing": {"total_cost": "36360.75", "ratio": "0.9000", "level": "blue"},
        },
    ]
    # a price given below every equivalent has no cheaper one
    given = await precheck(any_api, {"item_code": "X-IMP", "quantity": "2", "unit_price": "100"})
    assert given.json()["items"][0]["alternatives"] == []


async def test_unknown_items_without_a_price_are_refused_by_name(any_api: Api) -> None:
    await imported(any_api, STENTS_2026)
    await case_at(any_api, "1000.00")
    response = await precheck(
        any_api,
        {"item_code": "C-STENT-IMP", "quantity": "1"},
        {"item_code": "NOT-LISTED", "quantity": "1"},
        {"item_code": "ALSO-NOT", "quantity": "2"},
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "items.1.unit_price",
            "reason": "item NOT-LISTED has no unit_price and it is not in chargemaster 1,"
            " valid today",
        },
        {
            "field": "items.2.unit_price",
            "reason": "item ALSO-NOT has no unit_price and it is not in chargemaster 1,"
            " valid today",
        },
    ]
    # an unknown code with its price is costed as given, with no alternatives
    priced = await precheck(
        any_api, {"item_code": "NOT-LISTED", "quantity": "1", "unit_price": "5"}
    )
    assert priced.status_code == 200
    assert priced.json()["items"][0] == {
        "item_code": "NOT-LISTED",
        "item_name": None,
        "category": None,
        "quantity": "1",
        "unit_price": "5.00",
        "amount": "5.00",
        "price_source": "request",
        "equivalence_group": None,
        "alternatives": [],
    }


async def test_without_any_chargemaster_an_item_needs_its_price(any_api: Api) -> None:
    await case_at(any_api, "1000.00")
    response = await precheck(any_api, {"item_code": "C-STENT-IMP", "quantity": "1"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["reason"] == (
        "item C-STENT-IMP has no unit_price and no chargemaster is valid today"
    )


async def test_precheck_uses_a_new_version_as_soon_as_it_is_imported(any_api: Api) -> None:
    await imported(any_api, STENTS_2026)
    await case_at(any_api, "1000.00")
    stent = {"item_code": "C-STENT-IMP", "quantity": "1"}
    assert (await precheck(any_api, stent)).json()["added_cost"] == "11800.00"
    await imported(
        any_api,
        {
            "name": "H001 价格",
            "valid_from": "2026-11-01",
            "hospital_id": "H001",
            "items": [item("C-STENT-IMP", "9000.00", "DES"), item("C-STENT-DOM", "700.00", "DES")],
        },
    )
    again = (await precheck(any_api, stent)).json()
    assert again["added_cost"] == "9000.00"
    assert again["chargemaster"]["name"] == "H001 价格"
    assert [a["item_code"] for a in again["items"][0]["alternatives"]] == ["C-STENT-DOM"]


async def test_precheck_reads_the_chargemaster_from_memory(any_api: Api) -> None:
    """After the first pre-check, a pre-check of many items asks the database only for the
    chargemaster's newest version, and within VERSION_TRUST_SECONDS not even that."""
    await imported(any_api, STENTS_2026)
    await case_at(any_api, "1000.00")
    items = [{"item_code": "D-ATOR-BR", "quantity": "1"}] * 50
    assert (await precheck(any_api, *items)).status_code == 200
    statements: list[str] = []
    from sqlalchemy import event

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sync_engine = any_api.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", seen)
    try:
        forget_reference(any_api.app)  # as if the trusted second had passed
        assert (await precheck(any_api, *items)).status_code == 200
        touching = [s for s in statements if "chargemaster" in s]
        assert len(touching) == 1 and "max(chargemasters.id)" in touching[0], statements
        statements.clear()
        assert (await precheck(any_api, *items)).status_code == 200
        assert [s for s in statements if "chargemaster" in s] == []
    finally:
        event.remove(sync_engine, "before_cursor_execute", seen)


# --- who may do what -------------------------------------------------------------------------


async def test_office_and_admin_import_department_heads_and_systems_read(api: Api) -> None:
    specs = {
        "his": ("hospital_system", ["H001"], []),
        "head": ("department_head", ["H001"], ["CARD"]),
        "office_h1": ("insurance_office", ["H001"], []),
        "office_all": ("insurance_office", ["*"], []),
        "admin": ("admin", [], []),
    }
    keys = {}
    async with api.sessions() as db_session:
        for name, (role, hospitals, departments) in specs.items():
            _, keys[name] = await access_service.create_identity(
                db_session=db_session,
                name=name,
                role=role,
                hospitals=hospitals,
                departments=departments,
            )
        await db_session.commit()

    def headers(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[name]}"}

    shared = {**STENTS_2026}
    own = {**STENTS_2026, "hospital_id": "H001"}
    other = {**STENTS_2026, "hospital_id": "H002"}
    expected = {
        "his": (403, 403, 403),
        "head": (403, 403, 403),
        "office_h1": (403, 201, 403),
        "office_all": (201, 201, 201),
        "admin": (201, 201, 201),
    }
    for name, statuses in expected.items():
        got = tuple(
            [
                (
                    await api.client.post("/v1/chargemasters", json=body, headers=headers(name))
                ).status_code
                for body in (shared, own, other)
            ]
        )
        assert got == statuses, name
    for name in specs:
        listed = await api.client.get("/v1/chargemasters", headers=headers(name))
        assert listed.status_code == 200, name
        hospitals = {c["hospital_id"] for c in listed.json()["items"]}
        assert hospitals == (
            {None, "H001"}
            if name in ("his", "head", "office_h1")
            else {
                None,
                "H001",
                "H002",
            }
        ), name
        mine = await api.client.get(
            "/v1/chargemaster/items/C-STENT-IMP",
            params={"hospital_id": "H001"},
            headers=headers(name),
        )
        assert mine.status_code == 200, name
        theirs = await api.client.get(
            "/v1/chargemaster/items/C-STENT-IMP",
            params={"hospital_id": "H002"},
            headers=headers(name),
        )
        assert theirs.status_code == (404 if name in ("his", "head", "office_h1") else 200), name
