"""What a change of reference data does to the open cases, before or after it is made.

Pure: two price books (before and after the change) and the open cases, as the `cases`
projection holds them, counted by what their pricing depends on. A case is priced on
its admission day (services/casecost/apply.py), so the same lookups the worker makes
tell which cases it will price differently once it reloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from services.casecost.pricing import PriceBook


@dataclass(frozen=True, slots=True)
class PricingKey:
    """What an open case's standard depends on; cases that share one are priced alike."""

    hospital_id: str
    drg_code: str | None
    insurance_scheme: str | None
    priced_on: date | None  # the hospital's local day of admission


@dataclass(frozen=True, slots=True)
class Impact:
    open_cases: int
    # still (or newly) priced, by another catalogue or at another standard
    repriced: int
    # of those, at another standard amount (or priced for the first time)
    standard_changed: int
    # without a standard afterwards ("unpriced": no alert can fire for them)
    unpriced: int
    # of those, priced before the change
    newly_unpriced: int


def impact_of(before: PriceBook, after: PriceBook, open_cases: Mapping[PricingKey, int]) -> Impact:
    """Count the open cases whose pricing catalogue or standard the change moves."""
    repriced = standard_changed = unpriced = newly_unpriced = 0
    for key, count in open_cases.items():
        old = new = None
        if key.priced_on is not None:
            lookup = (key.hospital_id, key.drg_code, key.insurance_scheme, key.priced_on)
            old, new = before.standard(*lookup), after.standard(*lookup)
        if new is None:
            unpriced += count
            if old is not None:
                newly_unpriced += count
            continue
        if old is None or old.standard_cost != new.standard_cost:
            repriced += count
            standard_changed += count
        elif old.catalogue_id != new.catalogue_id:
            repriced += count
    return Impact(
        open_cases=sum(open_cases.values()),
        repriced=repriced,
        standard_changed=standard_changed,
        unpriced=unpriced,
        newly_unpriced=newly_unpriced,
    )
