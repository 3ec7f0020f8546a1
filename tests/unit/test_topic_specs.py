"""The topics drgwatch asks for, and how a topic on the broker is judged against them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.settings import CommonSettings
from services.topics import TopicSpec, check_topic, wanted_topics

SERVICES = Path(__file__).resolve().parents[2] / "services"


def layout(partitions: int, replicas: int) -> list[dict[str, object]]:
    return [{"partition": p, "replicas": list(range(replicas))} for p in range(partitions)]


@pytest.mark.parametrize(("replication", "min_insync"), [(1, 1), (2, 2), (3, 2), (5, 3)])
def test_min_insync_replicas_is_a_majority_unless_set(replication: int, min_insync: int) -> None:
    settings = CommonSettings(topic_replication=replication)
    assert settings.min_insync_replicas == min_insync
    for spec in wanted_topics(settings):
        assert spec.configs["min.insync.replicas"] == str(min_insync)


def test_min_insync_replicas_set_and_bounded_by_replication() -> None:
    settings = CommonSettings(topic_replication=3, topic_min_insync_replicas=3)
    assert {spec.configs["min.insync.replicas"] for spec in wanted_topics(settings)} == {"3"}
    with pytest.raises(ValidationError, match="cannot exceed DRGWATCH_TOPIC_REPLICATION"):
        CommonSettings(topic_replication=1, topic_min_insync_replicas=2)


def test_changelog_is_compacted_and_the_others_kept_for_the_retention() -> None:
    settings = CommonSettings(topic_partitions=12, topic_replication=3, topic_retention_hours=24)
    specs = {spec.name: spec for spec in wanted_topics(settings)}
    changelog = specs.pop(settings.case_changelog_topic)
    assert changelog.configs["cleanup.policy"] == "compact"
    assert "retention.ms" not in changelog.configs
    assert (changelog.partitions, changelog.replication) == (12, 3)
    for spec in specs.values():
        assert spec.configs["cleanup.policy"] == "delete"
        assert spec.configs["retention.ms"] == str(24 * 3600 * 1000)
        assert spec.replication == 3
    assert specs[settings.dead_letter_topic].partitions == 1
    assert specs[settings.events_topic].partitions == 12


SPEC = TopicSpec("t-events", 4, 3, {"cleanup.policy": "delete", "min.insync.replicas": "2"})


def test_a_topic_as_asked_has_no_differences() -> None:
    check = check_topic(
        SPEC, layout(4, 3), {"cleanup.policy": "delete", "min.insync.replicas": "2"}, False
    )
    assert (check.differences, check.unchecked, check.created) == ((), (), False)


def test_each_difference_is_named_with_both_values() -> None:
    check = check_topic(
        SPEC, layout(2, 1), {"cleanup.policy": "compact", "min.insync.replicas": "2"}, False
    )
    assert check.differences == (
        "partitions: 2 on the broker, 4 asked",
        "replication: 1 on the broker, 3 asked",
        "cleanup.policy: compact on the broker, delete asked",
    )


def test_configs_the_broker_does_not_report_are_unchecked_not_different() -> None:
    check = check_topic(SPEC, layout(4, 3), {}, True)
    assert check.differences == ()
    assert check.unchecked == ("cleanup.policy", "min.insync.replicas")


def test_a_topic_missing_after_creation_is_a_difference() -> None:
    assert check_topic(SPEC, None, {}, False).differences == ("not on the broker after creation",)


PRODUCERS = {"AIOKafkaProducer", "KafkaProducer"}


def producer_calls() -> list[tuple[str, ast.Call]]:
    """Every Kafka producer and Faust app drgwatch's services make (the bench's
    contenders are measured as they are, and left out)."""
    found = []
    for path in sorted(SERVICES.rglob("*.py")):
        if "bench" in path.relative_to(SERVICES).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in PRODUCERS or (name == "App" and ast.unparse(func) == "faust.App"):
                    found.append((f"{path.relative_to(SERVICES)}:{node.lineno}", node))
    return found


def test_every_producer_waits_for_all_in_sync_replicas() -> None:
    calls = producer_calls()
    assert len(calls) >= 4  # the ledger relay, the intake's answers, feed, the worker
    for where, call in calls:
        keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in call.keywords}
        if ast.unparse(call.func) == "faust.App":
            assert keywords.get("producer_acks") == "-1", f"{where}: producer_acks=-1 (all)"
        else:
            assert keywords.get("acks") == "'all'", f"{where}: acks='all'"
