"""The worker's consumer: nothing committed unapplied, no input event dropped as read."""

from __future__ import annotations

from faust.types import TP as FaustTP

from services.alerting.transport import DurableOffsets, ReadOffsets

TP, OTHER = ("events", 0), ("events", 1)


def test_read_offsets_never_drop_records_of_acknowledged_topics() -> None:
    read = ReadOffsets(lambda topic: topic == "events")
    events, changelog = FaustTP("events", 0), FaustTP("cases-changelog", 0)
    read[events] = 120
    read[changelog] = 7
    assert read[events] is None  # a re-read record below 120 is delivered again
    assert read[changelog] == 7  # table recovery keeps Faust's rule
    assert read[FaustTP("cases-changelog", 1)] is None  # unknown: nothing read yet


def test_commits_follow_contiguous_durable_offsets_from_the_seek_point() -> None:
    durable = DurableOffsets()
    durable.reset({TP: 31})
    assert durable.cap(TP, 40) == 31  # nothing applied yet: only what was committed
    for offset in (31, 32, 33):
        durable.mark(TP, offset)
    assert durable.cap(TP, 40) == 34
    assert durable.cap(TP, 33) == 33  # never more than Faust proposes


def test_a_skipped_event_holds_commits_until_it_is_applied() -> None:
    durable = DurableOffsets()
    durable.reset({TP: 31})
    for offset in (31, 32, 35, 36):  # 33 and 34 were skipped (a rebalance) and re-read
        durable.mark(TP, offset)
    assert durable.cap(TP, 37) == 33
    durable.mark(TP, 33)
    assert durable.cap(TP, 37) == 34
    durable.mark(TP, 34)
    assert durable.cap(TP, 37) == 37
    durable.mark(TP, 32)  # applied again: changes nothing
    assert durable.cap(TP, 40) == 37


def test_without_a_committed_offset_the_first_applied_event_starts_the_count() -> None:
    durable = DurableOffsets()
    durable.reset({TP: None})
    assert durable.cap(TP, 5) is None
    durable.mark(TP, 0)
    durable.mark(TP, 1)
    assert durable.cap(TP, 5) == 2


def test_partitions_not_assigned_here_are_never_committed() -> None:
    durable = DurableOffsets()
    durable.reset({TP: 10, OTHER: 4})
    durable.forget([OTHER])
    durable.mark(OTHER, 4)  # a batch that finished after the partition moved away
    assert durable.cap(OTHER, 9) is None
    assert durable.cap(TP, 12) == 10
