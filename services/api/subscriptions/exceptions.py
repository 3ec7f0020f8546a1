"""Errors of webhook subscriptions (mapped to HTTP by the API's one handler)."""

from __future__ import annotations

from services.api.exceptions import DrgwatchApiError


class InvalidSubscription(DrgwatchApiError):
    """422: a subscription setting is refused; the message names the field."""

    status_code = 422
