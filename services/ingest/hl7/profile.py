"""Facility profiles: where each sending facility puts what, read from YAML files.

A profile says which messages it reads (`sending_facility` MSH-4, `sending_application`
MSH-3; `*` for any), the hospital they belong to, the time zone of times written without
an offset, where each value is (`fields`: locations tried in order, the first non-empty
wins), how FT1-6 transaction types map, and how items get their category. The shipped
`profiles/default.yaml` reads the standard positions for any facility; `profiles/
vendor-example.yaml` shows a vendor's variant. `DRGWATCH_HL7_PROFILES` names a directory
(or one file) of profiles to use instead.

A message is read by the most specific profile that matches: facility and application,
then facility, then application, then `*`. An invalid file refuses the whole set with one
ProfilesRefused naming the file and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from services.casecost.events import Category
from services.ingest.hl7.exceptions import ProfilesRefused

DEFAULT_PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
PROFILE_SUFFIXES = (".yaml", ".yml")
_LOCATION = re.compile(
    r"^([A-Z][A-Z0-9]{2})-([1-9][0-9]{0,2})(?:\.([1-9][0-9]?))?(?:\.([1-9][0-9]?))?$"
)


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A value's place: `PV1-19`, `FT1-7.2` (component 2), `FT1-11.1.1` (subcomponent)."""

    segment: str
    field: int
    component: int = 1
    subcomponent: int = 1

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        found = _LOCATION.match(text.strip())
        if found is None:
            raise ValueError(
                f"{text!r} is not a location: write SEGMENT-FIELD[.COMPONENT[.SUBCOMPONENT]],"
                " e.g. PV1-19, FT1-7.2"
            )
        segment, field, component, subcomponent = found.groups()
        return cls(segment, int(field), int(component or 1), int(subcomponent or 1))

    def __str__(self) -> str:
        text = f"{self.segment}-{self.field}"
        if self.component != 1 or self.subcomponent != 1:
            text += f".{self.component}"
        if self.subcomponent != 1:
            text += f".{self.subcomponent}"
        return text


def _paths(value: list[str]) -> list[str]:
    for text in value:
        FieldPath.parse(text)
    return value


Places = Annotated[list[str], AfterValidator(_paths)]


def _zone(name: str | None) -> str | None:
    if name is not None:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (an IANA name, e.g. Asia/Shanghai)"
            ) from None
    return name


class Fields(BaseModel):
    """Where each value is read from; every entry is a list tried in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: Places = ["PV1-19"]
    department: Places = ["PV1-10", "PV1-3"]
    insurance_scheme: Places = ["PV1-20"]
    admitted_at: Places = ["PV1-44"]
    discharged_at: Places = ["PV1-45"]
    event_time: Places = ["EVN-6", "EVN-2", "MSH-7"]
    event_reason: Places = ["EVN-4"]
    drg_code: Places = ["DRG-1", "DG1-8"]
    transaction_id: Places = ["FT1-2"]
    transaction_date: Places = ["FT1-4"]
    transaction_type: Places = ["FT1-6"]
    item_code: Places = ["FT1-7"]
    item_name: Places = ["FT1-7.2", "FT1-8"]
    coding_system: Places = ["FT1-7.3"]
    quantity: Places = ["FT1-10"]
    extended_amount: Places = ["FT1-11"]
    unit_amount: Places = ["FT1-12"]
    charge_department: Places = ["FT1-13", "PV1-10", "PV1-3"]
    ordered_by: Places = ["FT1-21"]
    order_id: Places = ["FT1-23"]


class Categories(BaseModel):
    """An item's category: by FT1-7's coding system, else its code's longest listed
    prefix; else the chargemaster's (mapping.py), else `default` (and the acknowledgement
    says so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    coding_systems: dict[str, Category] = {}
    code_prefixes: dict[str, Category] = {}
    default: Category = Category.OTHER

    def of(self, item_code: str, coding_system: str) -> Category | None:
        """The category, or None where only the default applies."""
        systems = {name.upper(): category for name, category in self.coding_systems.items()}
        if coding_system and coding_system.upper() in systems:
            return systems[coding_system.upper()]
        for prefix in sorted(self.code_prefixes, key=len, reverse=True):
            if item_code.upper().startswith(prefix.upper()):
                return self.code_prefixes[prefix]
        return None


TransactionKind = Literal["charge", "credit", "skip", "refuse"]


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    name: str = Field(min_length=1, max_length=64)
    sending_facility: str = "*"
    sending_application: str = "*"
    # the hospital id of every message this profile reads; unset: `hospitals` maps MSH-4
    # (its first component), and with no map MSH-4 itself is the hospital id
    hospital_id: str | None = None
    hospitals: dict[str, str] = {}
    # times written without an offset are in this zone; unset: DRGWATCH_TIMEZONE
    timezone: Annotated[str | None, AfterValidator(_zone)] = None
    fields: Fields = Fields()
    # FT1-6 (HL7 table 0017): charge, credit, skip (not a case cost: acknowledged with a
    # note, nothing recorded) or refuse (AE: map it here first)
    transaction_types: dict[str, TransactionKind] = {
        "CG": "charge",
        "CD": "credit",
        "PY": "skip",
        "CO": "skip",
        "AJ": "refuse",
    }
    # a charge line with a negative quantity or amount: a reversal (credit) or refused
    negative_charge: Literal["credit", "refuse"] = "credit"
    # PV1-20 financial class -> insurance scheme; an unmapped class is used as it is
    insurance_schemes: dict[str, str] = {}
    default_insurance_scheme: str | None = None
    categories: Categories = Categories()

    def place(self, name: str) -> list[FieldPath]:
        return [FieldPath.parse(text) for text in getattr(self.fields, name)]

    def zone(self, default: ZoneInfo) -> ZoneInfo:
        return ZoneInfo(self.timezone) if self.timezone else default


@dataclass(frozen=True, slots=True)
class Profiles:
    """The profiles in force; `for_sender` picks one for a message."""

    profiles: tuple[Profile, ...]

    def for_sender(self, facility: str, application: str) -> Profile | None:
        ranked = [
            (facility, application),
            (facility, "*"),
            ("*", application),
            ("*", "*"),
        ]
        for wanted in ranked:
            for profile in self.profiles:
                if (profile.sending_facility, profile.sending_application) == wanted:
                    return profile
        return None


def profile_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.suffix in PROFILE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )
    return [path]


def load_profiles(path: Path | None = None) -> Profiles:
    """The profiles of a directory (or one file); the shipped ones when `path` is None."""
    files = profile_files(path or DEFAULT_PROFILES_DIR)
    if not files:
        raise ProfilesRefused(f"{path}: no HL7 profile files (*.yaml) there")
    problems: list[str] = []
    loaded: list[Profile] = []
    senders: dict[tuple[str, str], str] = {}
    for file in files:
        try:
            raw: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            problems.append(f"{file}: cannot read it: {error}")
            continue
        try:
            profile = Profile.model_validate(raw)
        except ValidationError as error:
            for detail in error.errors(include_url=False):
                where = ".".join(str(part) for part in detail["loc"]) or "(the file)"
                reason = str(detail["msg"]).removeprefix("Value error, ")
                problems.append(f"{file}: {where}: {reason}")
            continue
        sender = (profile.sending_facility, profile.sending_application)
        if sender in senders:
            problems.append(
                f"{file}: sending_facility/sending_application {sender[0]}/{sender[1]}:"
                f" already read by {senders[sender]}"
            )
            continue
        senders[sender] = str(file)
        loaded.append(profile)
    if problems:
        raise ProfilesRefused("HL7 profiles refused: " + "; ".join(problems))
    return Profiles(tuple(loaded))
