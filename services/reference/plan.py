"""What an import will store, decided before anything is written (pure).

An import is measured against the catalogue it supersedes: the real catalogue in force
on its effective date for its hospital (or for every hospital). The shipped sample is
never that catalogue: it is not amended and nothing is refused for lacking its groups.

- `full` (the default): the import is the whole catalogue. Refused if it lacks groups
  or insurance schemes of the catalogue it supersedes, since every case of a group left
  out would go unpriced from its date; the refusal says how to proceed.
- `amend`: the new version is the superseded catalogue with the imported groups added
  or replaced, and its base rates kept unless given. Refused when there is nothing to
  amend.
- `replace`: the import is stored as given; groups and schemes left out are withdrawn
  from its date on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.casecost.pricing import Catalogue, DrgGroup, PriceBook
from services.reference.exceptions import CatalogueRefused
from services.reference.schemas import CatalogueIn, ImportMode

# an id above any the database gives, so a planned catalogue ranks as the newest stored
PLANNED_ID = 2**62
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class GroupChanges:
    """The groups of the new version against the catalogue it supersedes."""

    added: int
    changed: int
    unchanged: int
    withdrawn: int


@dataclass(frozen=True, slots=True)
class ImportPlan:
    catalogue: Catalogue  # with PLANNED_ID until stored
    based_on: Catalogue | None
    changes: GroupChanges


def scope_of(hospital_id: str | None) -> str:
    """The price book's name for a catalogue's hospitals: one hospital, or "*" for all."""
    return hospital_id or "*"


def describe(catalogue: Catalogue) -> str:
    where = f" for hospital {catalogue.hospital_id}" if catalogue.hospital_id else ""
    return (
        f"{catalogue.name!r} (id {catalogue.catalogue_id}, from {catalogue.effective_from}{where})"
    )


def plan_import(price_book: PriceBook, catalogue_in: CatalogueIn) -> ImportPlan:
    """The catalogue an import stores, or CatalogueRefused saying why not and what to do."""
    mode: ImportMode = catalogue_in.mode
    based_on = price_book.catalogue_for(
        scope_of(catalogue_in.hospital_id), catalogue_in.effective_from, include_sample=False
    )
    imported = {
        group.drg_code: DrgGroup(
            group.drg_code,
            group.name,
            group.weight,
            group.avg_los_days,
            group.standard_cost,
            name_en=group.name_en,
            mean_cost=group.mean_cost,
            high_ratio=group.high_ratio,
            low_ratio=group.low_ratio,
        )
        for group in catalogue_in.groups
    }
    rates = dict(catalogue_in.base_rates)
    if mode == "amend":
        if based_on is None:
            raise CatalogueRefused(
                f"mode: there is no catalogue in force on {catalogue_in.effective_from}"
                f"{_for(catalogue_in.hospital_id)} to amend (the sample is never amended);"
                " import the whole catalogue"
            )
        groups = {**based_on.groups, **imported}
        rates = {**based_on.base_rates, **rates}
    else:
        groups = imported
        if mode == "full" and based_on is not None:
            _refuse_partial(based_on, groups, rates, catalogue_in.effective_from)
    _refuse_unpriceable(groups, rates)
    catalogue = Catalogue(
        catalogue_id=PLANNED_ID,
        name=catalogue_in.name,
        effective_from=catalogue_in.effective_from,
        base_rates=rates,
        groups=groups,
        hospital_id=catalogue_in.hospital_id,
    )
    return ImportPlan(catalogue=catalogue, based_on=based_on, changes=_changes(based_on, groups))


def _for(hospital_id: str | None) -> str:
    return f" for hospital {hospital_id}" if hospital_id else ""


def _examples(codes: list[str]) -> str:
    shown = ", ".join(codes[:EXAMPLES])
    return shown + (", ..." if len(codes) > EXAMPLES else "")


def _refuse_partial(
    based_on: Catalogue, groups: dict[str, DrgGroup], rates: dict[str, Decimal], on: date
) -> None:
    how = (
        'Import it as an amendment ("mode": "amend", drgwatch drg import --amend) to add or'
        " replace only the groups given and keep the rest, or as a replacement"
        ' ("mode": "replace", --replace) to withdraw what it leaves out'
    )
    lacking = sorted(set(based_on.groups) - set(groups))
    if lacking:
        raise CatalogueRefused(
            f"groups: this import lacks {len(lacking)} of the {len(based_on.groups)} groups of"
            f" the catalogue in force on {on}, {describe(based_on)}: {_examples(lacking)};"
            f" cases of those groups would go unpriced. {how}"
        )
    schemes = sorted(set(based_on.base_rates) - set(rates))
    if schemes:
        raise CatalogueRefused(
            f"base_rates: this import has no base rate for {', '.join(schemes)}, which the"
            f" catalogue in force on {on}, {describe(based_on)}, prices; cases of that scheme"
            f" would go unpriced. {how}"
        )


def _refuse_unpriceable(groups: dict[str, DrgGroup], rates: dict[str, Decimal]) -> None:
    if rates:
        return
    without = sorted(code for code, group in groups.items() if group.standard_cost is None)
    if without:
        raise CatalogueRefused(
            f"base_rates: none given, and {len(without)} groups have no standard_cost of their"
            f" own ({_examples(without)}); give a base rate per insurance scheme"
            " (standard = weight x base rate)"
        )


def _changes(based_on: Catalogue | None, groups: dict[str, DrgGroup]) -> GroupChanges:
    before = {} if based_on is None else based_on.groups
    added = changed = unchanged = 0
    for code, group in groups.items():
        if code not in before:
            added += 1
        elif before[code] == group:
            unchanged += 1
        else:
            changed += 1
    withdrawn = len(set(before) - set(groups))
    return GroupChanges(added=added, changed=changed, unchanged=unchanged, withdrawn=withdrawn)
