"""Hostile-input tests: the same in-process app on the real PostgreSQL as tests/api."""

from __future__ import annotations

import re

from tests.api.conftest import Api, api

__all__ = ["Api", "api", "PATH_VALUES", "concrete"]

# a well-formed value for each path parameter of the app
PATH_VALUES = {
    "hospital_id": "H001",
    "case_id": "C1",
    "alert_id": "a1",
    "subscription_id": "sub_0",
    "delivery_id": "msg_0",
    "drg_code": "FM15",
    "catalogue_id": "1",
    "identity_id": "idn_00000000",
    "department": "CARD",
    "period": "2026-12",
    "rule_id": "repeat-exam",
    "item_code": "C-STENT-IMP",
}


def concrete(template: str, **values: str) -> str:
    """A route template with its parameters filled in (`values` first)."""
    return re.sub(
        r"\{(\w+)\}",
        lambda match: values.get(match.group(1), PATH_VALUES[match.group(1)]),
        template,
    )
