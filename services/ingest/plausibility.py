"""Whether an event's times are plausible when it is received.

An event cannot have happened after it was posted: one dated beyond the sending
system's clock skew is refused (a charge dated 2031 was counted in its case's total
today). One dated long before it was received is plausible (a backfill, a late
correction) but worth seeing: it is accepted with a warning, and counted by a metric.

Only ingest asks, with the time of receipt: the worker applies what ingest accepted
whenever it is replayed, however old it is by then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.casecost.events import TIMESTAMP_FIELDS, Event
from services.validation import FieldError


@dataclass(frozen=True, slots=True)
class TimeBounds:
    future_skew: timedelta = timedelta(minutes=5)
    backdated_after: timedelta = timedelta(days=90)


def check_times(
    event: Event, *, now: datetime, bounds: TimeBounds
) -> tuple[list[FieldError], list[FieldError]]:
    """(refusals, warnings) for the event's times, received at `now`."""
    refusals: list[FieldError] = []
    warnings: list[FieldError] = []
    # the model's fields as stored: getattr of a field another type lacks goes through
    # pydantic's __getattr__ and an AttributeError, costlier than the check itself
    fields = vars(event)
    for field in TIMESTAMP_FIELDS:
        moment: datetime | None = fields.get(field)
        if moment is None:
            continue
        if moment - now > bounds.future_skew:
            refusals.append(
                FieldError(
                    field=field,
                    reason=(
                        f"is in the future: {moment.isoformat()} is more than"
                        f" {_span(bounds.future_skew)} after it was received"
                        f" ({now.isoformat(timespec='seconds')}); check the sending clock"
                    ),
                )
            )
        elif now - moment > bounds.backdated_after:
            warnings.append(
                FieldError(
                    field=field,
                    reason=(
                        f"{moment.isoformat()} is more than {_span(bounds.backdated_after)}"
                        " before it was received; accepted and counted: check the sending"
                        " clock, or that this is a deliberate backfill"
                    ),
                )
            )
    return refusals, warnings


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} days"
    return f"{seconds} seconds"
