"""The alert detail as the API serves it: the alert, and the explanation of its case."""

from __future__ import annotations

from pydantic import Field

from services.alerting.alerts.schemas import AlertDetail
from services.api.cases.schemas import Explanation


class ExplainedAlert(AlertDetail):
    """An alert with its lifecycle status, its actions, and why its case costs what it
    does."""

    explanation: Explanation | None = Field(
        default=None,
        description="the explanation of the alert's case as the case stands now (worked out"
        " when the alert is served, not when it was raised); null for an alert that names"
        " no case, or a case the caller may not read",
    )
