"""DRG catalogues and alert thresholds (reference data)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from services.access.exceptions import NotPermitted
from services.access.principal import ALL_HOSPITALS, Principal
from services.api.deps import SessionDep, require
from services.casecost.events import decimal_text
from services.reference import service as catalogue_service
from services.reference.schemas import CatalogueIn, CatalogueOut, GroupOut
from services.storage.engine import upsert
from services.storage.models import ThresholdRecord

router = APIRouter(tags=["reference data"])
ReferenceWriter = Annotated[Principal, Depends(require("reference:write"))]


def _check_hospital(caller: Principal, hospital_id: str) -> None:
    """Reference data for every hospital ('*') needs a caller who sees every hospital."""
    allowed = (
        caller.all_hospitals if hospital_id == ALL_HOSPITALS else caller.sees_hospital(hospital_id)
    )
    if not allowed:
        raise NotPermitted(
            f"hospital_id: this credential may not change reference data of {hospital_id!r}"
        )


Fraction = Annotated[Decimal, BeforeValidator(decimal_text), Field(gt=0, le=10)]


@router.post("/v1/drg-catalogues", status_code=201, response_model=CatalogueOut)
async def create_catalogue(
    catalogue_in: CatalogueIn, db_session: SessionDep, caller: ReferenceWriter
) -> CatalogueOut:
    """Load a catalogue version; workers price open cases again against it."""
    _check_hospital(caller, catalogue_in.hospital_id or ALL_HOSPITALS)
    created = await catalogue_service.create(db_session=db_session, catalogue_in=catalogue_in)
    await db_session.commit()
    return created


@router.get("/v1/drg-catalogues/current/groups/{drg_code}", response_model=GroupOut)
async def get_current_group(
    drg_code: str,
    db_session: SessionDep,
    _caller: Annotated[Principal, Depends(require("reference:read"))],
    hospital_id: Annotated[str | None, Query(max_length=64)] = None,
    on: date | None = None,
) -> GroupOut:
    """A DRG group in the catalogue in force today (or `on`), with its standard costs."""
    return await catalogue_service.get_current_group(
        db_session=db_session, drg_code=drg_code, hospital_id=hospital_id, on=on
    )


class ThresholdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hospital_id: Annotated[str, Field(min_length=1, max_length=64)] = "*"
    drg_code: Annotated[str, Field(min_length=1, max_length=32)] = "*"
    blue: Fraction
    yellow: Fraction
    red: Fraction

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdsIn:
        if not self.blue <= self.yellow <= self.red:
            raise ValueError("thresholds must satisfy blue <= yellow <= red")
        return self


@router.put("/v1/alert-thresholds", response_model=ThresholdsIn)
async def put_thresholds(
    thresholds: ThresholdsIn, db_session: SessionDep, request: Request, caller: ReferenceWriter
) -> ThresholdsIn:
    """Set level thresholds for a hospital and/or DRG ('*' for any); open cases re-level."""
    _check_hospital(caller, thresholds.hospital_id)
    engine = request.app.state.engine
    statement = upsert(
        engine,
        ThresholdRecord,
        ["hospital_id", "drg_code"],
        ["blue", "yellow", "red", "updated_at"],
    ).values(
        hospital_id=thresholds.hospital_id,
        drg_code=thresholds.drg_code,
        blue=thresholds.blue,
        yellow=thresholds.yellow,
        red=thresholds.red,
        updated_at=datetime.now(UTC),
    )
    await db_session.execute(statement)
    await catalogue_service.bump_reference_version(db_session=db_session)
    await db_session.commit()
    return thresholds
