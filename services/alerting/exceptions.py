"""Errors of alerting: the worker, alert records and their lifecycle, webhooks.

AlertingError
 ├── UnprocessableEvent   a message on the events topic that is not a valid event
 │                        (kept as a dead letter; never reaches a client)
 ├── AlertNotFound        no such alert, or outside the caller's scope    (NotFound)
 ├── UnknownCase          no such case, or outside the caller's scope     (NotFound)
 ├── InvalidTransition    not allowed from the alert's current status     (Conflict)
 ├── ConcurrentAction     someone acted on the alert at the same moment   (Conflict)
 ├── InvalidSubscription  a subscription setting is refused, naming it    (Invalid)
 ├── SubscriptionNotFound                                                 (NotFound)
 ├── DeliveryNotFound                                                     (NotFound)
 ├── DeliveryPending      a resend of a delivery still waiting to go      (Conflict)
 ├── TooManySubscriptions the owner has as many as it may                 (Conflict)
 ├── TestsTooFrequent     test messages asked for faster than allowed     (RateLimited)
 └── ChangelogNotEmpty    a restore asked of a changelog that holds records (Conflict)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.errors import Conflict, DrgwatchError, Invalid, NotFound, RateLimited

if TYPE_CHECKING:
    from services.alerting.alerts.lifecycle import Status


class AlertingError(DrgwatchError):
    pass


class UnprocessableEvent(AlertingError):
    pass


class AlertNotFound(AlertingError, NotFound):
    pass


class UnknownCase(AlertingError, NotFound):
    pass


class InvalidTransition(AlertingError, Conflict):
    """The action is not allowed from the alert's current status."""

    def __init__(self, message: str, status: Status) -> None:
        super().__init__(message)
        self.status = status


class ConcurrentAction(AlertingError, Conflict):
    pass


class InvalidSubscription(AlertingError, Invalid):
    pass


class SubscriptionNotFound(AlertingError, NotFound):
    pass


class DeliveryNotFound(AlertingError, NotFound):
    pass


class DeliveryPending(AlertingError, Conflict):
    pass


class TooManySubscriptions(AlertingError, Conflict):
    pass


class TestsTooFrequent(AlertingError, RateLimited):
    pass


class ChangelogNotEmpty(AlertingError, Conflict):
    """Seeding a changelog that holds records would put old states after newer ones."""
