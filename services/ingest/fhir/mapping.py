"""The site's FHIR mapping: which hospital, department, category and DRG each FHIR
reference, coding or extension means (a YAML or JSON file, validated on load).

The shipped `default-mapping.yaml` documents every key; `DRGWATCH_FHIR_MAPPING` names a
site's own file. A refused file is reported with its path and the field at fault.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.casecost.events import Category, Code, Identifier
from services.ingest.exceptions import IngestError
from services.validation import field_errors, summary

DEFAULT_MAPPING_FILE = Path(__file__).with_name("default-mapping.yaml")


class MappingRefused(IngestError):
    """A mapping file that cannot be used, naming the file and the field."""


class HospitalMapping(BaseModel):
    """One hospital's departments by FHIR reference, and what holds when none is named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locations: dict[str, Code] = {}  # Location id -> department
    organizations: dict[str, Code] = {}  # Organization id (a department) -> department
    service_types: dict[str, Code] = {}  # Encounter.serviceType code -> department
    department: Code | None = None
    insurance_scheme: Code | None = None


class FhirMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    hospital_tag_system: str = "urn:drgwatch:hospital"
    organizations: dict[str, Identifier] = {}  # serviceProvider Organization id -> hospital
    sources: dict[str, Identifier] = {}  # meta.source -> hospital
    default_hospital: Identifier | None = None
    hospitals: dict[str, HospitalMapping] = {}
    category_systems: dict[str, Category] = {}
    drg_systems: list[str] = []
    # extensions drgwatch reads (on the resource itself)
    insurance_scheme_extension: str = "urn:drgwatch:fhir:insurance-scheme"
    drg_extension: str = "urn:drgwatch:fhir:drg"
    unit_price_extension: str = "urn:drgwatch:fhir:unit-price"

    def hospital(self, hospital_id: str) -> HospitalMapping:
        return self.hospitals.get(hospital_id) or HospitalMapping()


def load_mapping(path: Path | None = None) -> FhirMapping:
    """The mapping in `path` (None: the shipped default), or MappingRefused."""
    path = path or DEFAULT_MAPPING_FILE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MappingRefused(f"{path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise MappingRefused(f"{path}: not YAML/JSON ({error})") from None
    try:
        return FhirMapping.model_validate(document or {})
    except ValidationError as error:
        raise MappingRefused(f"{path}: {summary(field_errors(error))}") from None
