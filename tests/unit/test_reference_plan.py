"""The price book's ranking of the sample, import planning (full, amend, replace) and
the impact of a change on open cases: pure, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.casecost.pricing import PriceBook
from services.reference.exceptions import CatalogueRefused
from services.reference.impact import PricingKey, impact_of
from services.reference.plan import PLANNED_ID, plan_import
from services.reference.schemas import CatalogueIn
from tests.unit.case_events import catalogue

JAN_2025, JAN_2026 = date(2025, 1, 1), date(2026, 1, 1)
MARCH_2026 = date(2026, 3, 1)


def sample(**over: Any) -> Any:
    return replace(catalogue(catalogue_id=1, effective_from=JAN_2026), sample=True, **over)


def test_a_real_catalogue_in_force_outranks_the_sample_whatever_the_dates() -> None:
    real = catalogue(catalogue_id=2, effective_from=JAN_2025)
    book = PriceBook(catalogues=(sample(), real))
    assert book.catalogue_for("H1", MARCH_2026) is real
    assert book.catalogue_for("*", MARCH_2026) is real
    # before the real one is in force the sample still prices (it is all there is)
    later_real = catalogue(catalogue_id=3, effective_from=date(2026, 6, 1))
    book = PriceBook(catalogues=(sample(), later_real))
    assert book.catalogue_for("H1", MARCH_2026).catalogue_id == 1  # type: ignore[union-attr]
    assert book.catalogue_for("H1", MARCH_2026, include_sample=False) is None
    assert book.catalogue_for("H1", date(2026, 7, 1)) is later_real


def test_the_sample_is_outranked_by_a_real_catalogue_of_any_hospital_scope() -> None:
    hospital_real = catalogue(catalogue_id=2, effective_from=JAN_2025, hospital_id="H1")
    book = PriceBook(catalogues=(sample(), hospital_real))
    assert book.catalogue_for("H1", MARCH_2026) is hospital_real
    assert book.catalogue_for("H2", MARCH_2026).catalogue_id == 1  # type: ignore[union-attr]


def test_among_real_catalogues_the_newest_in_force_wins_then_the_hospitals_own() -> None:
    old = catalogue(catalogue_id=1, effective_from=JAN_2025)
    new = catalogue(catalogue_id=2, effective_from=JAN_2026)
    own = catalogue(catalogue_id=3, effective_from=JAN_2026, hospital_id="H1")
    book = PriceBook(catalogues=(own, new, old))
    assert book.catalogue_for("H1", MARCH_2026) is own
    assert book.catalogue_for("H2", MARCH_2026) is new
    assert book.catalogue_for("H2", date(2025, 6, 1)) is old


def importing(mode: str = "full", **over: Any) -> CatalogueIn:
    body: dict[str, Any] = {
        "name": "import",
        "effective_from": "2026-02-01",
        "mode": mode,
        "base_rates": {"employee": "11000.00"},
        "groups": [{"drg_code": "D1", "name": "group D1", "weight": "1.5"}],
    }
    body.update(over)
    return CatalogueIn.model_validate(body)


# the catalogue in force: D1 (1), D2 (2), OVR (explicit 5000.00); employee 10000, resident 8000
IN_FORCE = catalogue(catalogue_id=7, effective_from=JAN_2026)


def test_a_partial_import_is_refused_naming_how_many_groups_it_lacks() -> None:
    with pytest.raises(CatalogueRefused) as refused:
        plan_import(PriceBook(catalogues=(IN_FORCE,)), importing())
    message = refused.value.message
    assert message.startswith("groups: this import lacks 2 of the 3 groups")
    assert "D2, OVR" in message and "id 7" in message
    assert '"mode": "amend"' in message and '"mode": "replace"' in message


def test_a_full_import_lacking_a_scheme_is_refused() -> None:
    groups = [
        {"drg_code": code, "name": code, "weight": "1"} for code in ("D1", "D2", "OVR", "NEW")
    ]
    with pytest.raises(CatalogueRefused, match=r"^base_rates: .* no base rate for resident"):
        plan_import(PriceBook(catalogues=(IN_FORCE,)), importing(groups=groups))


def test_the_sample_is_not_the_catalogue_in_force_for_the_check() -> None:
    plan = plan_import(PriceBook(catalogues=(sample(),)), importing())
    assert plan.based_on is None
    assert plan.changes.added == 1 and plan.changes.withdrawn == 0


def test_an_amendment_keeps_the_other_groups_and_the_base_rates_not_given() -> None:
    plan = plan_import(
        PriceBook(catalogues=(IN_FORCE,)),
        importing(
            "amend",
            base_rates={"employee": "11000.00"},
            groups=[
                {"drg_code": "D1", "name": "group D1", "weight": "1.5"},
                {"drg_code": "NEW", "name": "new", "weight": "0.5"},
            ],
        ),
    )
    new = plan.catalogue
    assert plan.based_on is IN_FORCE
    assert sorted(new.groups) == ["D1", "D2", "NEW", "OVR"]
    assert new.groups["D1"].weight == Decimal("1.5")
    assert new.groups["D2"] == IN_FORCE.groups["D2"]
    assert new.base_rates == {"employee": Decimal("11000.00"), "resident": Decimal("8000.00")}
    assert (plan.changes.added, plan.changes.changed, plan.changes.unchanged) == (1, 1, 2)
    assert new.catalogue_id == PLANNED_ID


def test_an_amendment_with_nothing_in_force_is_refused() -> None:
    with pytest.raises(CatalogueRefused, match="^mode: there is no catalogue in force"):
        plan_import(PriceBook(catalogues=(sample(),)), importing("amend"))


def test_a_replacement_withdraws_what_it_leaves_out() -> None:
    plan = plan_import(PriceBook(catalogues=(IN_FORCE,)), importing("replace"))
    assert sorted(plan.catalogue.groups) == ["D1"]
    assert (plan.changes.changed, plan.changes.withdrawn) == (1, 2)


def test_without_base_rates_every_group_needs_its_own_standard() -> None:
    with pytest.raises(CatalogueRefused, match=r"^base_rates: none given, and 1 groups"):
        plan_import(PriceBook(), importing(base_rates={}))
    explicit = [{"drg_code": "D1", "name": "x", "weight": "1", "standard_cost": "9000.00"}]
    assert plan_import(PriceBook(), importing(base_rates={}, groups=explicit)).catalogue.groups


@pytest.mark.parametrize("rate", ["1", "999.99", "100000.01", "1225270"])
def test_implausible_base_rates_are_refused_naming_the_scheme(rate: str) -> None:
    with pytest.raises(ValidationError) as refused:
        importing(base_rates={"employee": "12252.70", "resident": rate})
    (error,) = refused.value.errors()
    assert error["loc"] == ("base_rates", "resident")
    assert "not a plausible base rate" in error["msg"]


@pytest.mark.parametrize("rate", ["1000", "5631.17", "12252.70", "100000"])
def test_plausible_base_rates_are_taken(rate: str) -> None:
    assert importing(base_rates={"employee": rate}).base_rates["employee"] == Decimal(rate)


def key(drg: str | None, scheme: str | None = "employee", on: date | None = MARCH_2026) -> Any:
    return PricingKey("H1", drg, scheme, on)


def test_impact_counts_repriced_changed_and_unpriced_open_cases() -> None:
    before = PriceBook(catalogues=(IN_FORCE,))
    plan = plan_import(before, importing("replace"))
    after = PriceBook(catalogues=(IN_FORCE, plan.catalogue))
    cases = {
        key("D1"): 3,  # 10000.00 -> 16500.00
        key("D2"): 2,  # withdrawn by the replacement: unpriced
        key("D1", "resident"): 1,  # the replacement has no resident rate: unpriced
        key("ZZ"): 4,  # unknown before and after
        key("D1", on=date(2025, 6, 1)): 5,  # admitted before either catalogue
        key("D1", on=None): 1,  # no pricing day yet
    }
    impact = impact_of(before, after, cases)
    assert impact.open_cases == 16
    assert (impact.repriced, impact.standard_changed) == (3, 3)
    assert (impact.unpriced, impact.newly_unpriced) == (2 + 1 + 4 + 5 + 1, 3)


def test_impact_counts_a_new_catalogue_at_the_same_standard_as_repriced_only() -> None:
    before = PriceBook(catalogues=(IN_FORCE,))
    same = replace(IN_FORCE, catalogue_id=8, name="same again")
    impact = impact_of(before, PriceBook(catalogues=(IN_FORCE, same)), {key("D1"): 2})
    assert (impact.repriced, impact.standard_changed, impact.unpriced) == (2, 0, 0)
