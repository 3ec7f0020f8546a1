"""Errors of the indicators, departments and targets endpoints.

IndicatorsError
 ├── UnknownHospital  a hospital outside the caller's scope        (NotFound)
 └── UnknownTarget    no target set for that department and period (NotFound)
"""

from __future__ import annotations

from services.api.exceptions import ApiError
from services.errors import NotFound


class IndicatorsError(ApiError):
    pass


class UnknownHospital(IndicatorsError, NotFound):
    pass


class UnknownTarget(IndicatorsError, NotFound):
    pass
