"""What the bench reports for sizing partitions: one partition's ceiling is the rate one
worker sustains, measured on one partition where that run was made."""

from __future__ import annotations

from services.bench.runner import Outcome, Plan, partition_sizing, table


def _outcome(name: str, processed: int, seconds: float, cpu_seconds: float) -> Outcome:
    return Outcome(name, processed=processed, seconds=seconds, cpu_seconds=cpu_seconds)


def test_the_one_partition_run_is_the_measure_when_it_ran() -> None:
    outcomes = {
        "drgwatch": _outcome("drgwatch", 12_000, 1.5, 1.2),
        "drgwatch_one_partition": _outcome("drgwatch_one_partition", 12_000, 2.0, 1.6),
    }
    sizing = partition_sizing(Plan(lines=10_000, cases=500, partitions=8), outcomes)
    assert sizing == {
        "events_per_s_per_partition": 6_000,
        "measured_by": "drgwatch_one_partition",
        "measured_partitions": 1,
        "events_per_cpu_s": 7_500,
        "worker_events_per_s": 8_000,
        "worker_partitions": 8,
        "even_share_events_per_s": 1_000,
    }


def test_without_the_one_partition_run_the_worker_over_all_partitions_is_the_measure() -> None:
    failed = Outcome("drgwatch_one_partition", error="did not finish within 600s")
    outcomes = {
        "drgwatch": _outcome("drgwatch", 24_000, 3.0, 2.4),
        "drgwatch_one_partition": failed,
    }
    sizing = partition_sizing(Plan(lines=20_000, cases=500, partitions=12), outcomes)
    assert sizing is not None
    assert sizing["events_per_s_per_partition"] == 8_000
    assert sizing["measured_by"] == "drgwatch"
    assert sizing["measured_partitions"] == 12
    assert sizing["even_share_events_per_s"] == 667


def test_no_worker_run_no_figure() -> None:
    plan = Plan(lines=10_000, cases=500)
    assert partition_sizing(plan, {"quix": _outcome("quix", 10_000, 1.0, 0.5)}) is None
    failed = {"drgwatch": Outcome("drgwatch", error="exited with 1")}
    assert partition_sizing(plan, failed) is None


def test_the_table_prints_the_field_and_what_it_was_measured_on() -> None:
    outcomes = {
        "drgwatch": _outcome("drgwatch", 12_000, 1.5, 1.2),
        "drgwatch_one_partition": _outcome("drgwatch_one_partition", 12_000, 2.0, 1.6),
    }
    sizing = partition_sizing(Plan(lines=10_000, cases=500, partitions=8), outcomes)
    result = {
        "lines_per_s": {"drgwatch": 8_000, "drgwatch_one_partition": 6_000},
        "seconds": {"drgwatch": 1.5, "drgwatch_one_partition": 2.0},
        "peak_rss_mb": {"drgwatch": 300.0, "drgwatch_one_partition": 290.0},
        "errors": {},
        "ratios": {},
        "partition_sizing": sizing,
        "correct": True,
        "exact": {"drgwatch": True, "drgwatch_one_partition": True},
        "problems": [],
    }
    printed = table(result)
    assert (
        "events_per_s_per_partition 6,000 (one partition, one worker; 7,500 per CPU second)"
        in printed
    )
    assert "a worker holding 8 evenly loaded partitions: 1,000/s each (8,000/s in all)" in printed
