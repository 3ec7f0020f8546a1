"""`drgwatch bench --quick` as a user runs it: every contender on one embedded broker,
drgwatch's result checked, the full path measured, the JSON the issue names written;
with `--per-partition`, the worker's rate on one partition, which the deployment's
partition sizing is worked out from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration


def test_quick_bench_runs_every_contender_and_checks_drgwatch(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "DRGWATCH_DATABASE_URL": ""}  # the embedded default, SQLite
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "bench",
            "--quick",
            "--per-partition",
            "--json",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = orjson.loads(out.read_bytes())
    contenders = {
        "ceiling",
        "quix",
        "quix_core",
        "naive_faust",
        "drgwatch",
        "drgwatch_no_rules",
        "drgwatch_one_partition",
    }
    assert set(result["lines_per_s"]) == contenders, result["errors"]
    assert all(rate > 0 for rate in result["lines_per_s"].values())
    assert set(result["peak_rss_mb"]) == contenders
    assert result["correct"] is True and result["problems"] == []
    # drgwatch's core in Quix Streams: its states and alerts checked as the worker's are
    assert result["exact"] == {
        "drgwatch": True,
        "drgwatch_no_rules": True,
        "drgwatch_one_partition": True,
        "quix_core": True,
    }
    # a partition's ceiling: the worker alone on a one-partition topic, exactly correct too
    single = result["lines_per_s"]["drgwatch_one_partition"]
    assert result["events_per_s_per_partition"] == single > 0
    sizing = result["partition_sizing"]
    assert sizing["events_per_s_per_partition"] == single
    assert sizing["measured_by"] == "drgwatch_one_partition"
    assert sizing["measured_partitions"] == 1
    messages = result["workload"]["messages"]
    cpu_one = result["cpu_seconds"]["drgwatch_one_partition"]
    assert sizing["events_per_cpu_s"] == pytest.approx(messages / cpu_one, rel=0.01)
    # and what each of the worker's evenly loaded partitions gets in the main run
    assert sizing["worker_partitions"] == result["workload"]["partitions"] == 8
    assert sizing["worker_events_per_s"] == result["lines_per_s"]["drgwatch"]
    assert sizing["even_share_events_per_s"] == round(result["lines_per_s"]["drgwatch"] / 8)
    assert f"events_per_s_per_partition {single:,} (one partition, one worker" in run.stdout
    assert "drgwatch's core in Quix exactly correct: True" in run.stdout
    # the gap to Quix split into the shell's part and the core's, in throughput and CPU
    rates, cpu, ratios = result["lines_per_s"], result["cpu_seconds"], result["ratios"]
    for mine, peer in (("drgwatch", "quix"), ("drgwatch", "quix_core"), ("quix_core", "quix")):
        # (worked out before the figures were rounded for the JSON)
        assert ratios[f"{mine}_vs_{peer}"] == pytest.approx(rates[mine] / rates[peer], rel=0.01)
        assert ratios[f"cpu_{mine}_vs_{peer}"] == pytest.approx(cpu[peer] / cpu[mine], rel=0.01)
    # the worker with the shipped rules and without, in the same run: their ratio
    with_rules = result["ratios"]["with_rules_vs_without"]
    # (worked out before the figures were rounded for the JSON: equal to a rounding step)
    assert abs(with_rules - rates["drgwatch"] / rates["drgwatch_no_rules"]) <= 0.002
    assert abs(result["rules_cost"] - (1 - rates["drgwatch"] / rates["drgwatch_no_rules"])) <= 0.002
    # and in CPU per message, which other processes' load leaves alone
    assert cpu["drgwatch"] > 0 and cpu["drgwatch_no_rules"] > 0
    assert (
        abs(result["rules_cpu_share"] - (1 - cpu["drgwatch_no_rules"] / cpu["drgwatch"])) <= 0.002
    )
    # the rules found something, and what the recount redoes was found exactly
    assert result["rule_alerts"]["large-order"] > 0
    assert "rules cost" in run.stdout and "of the worker's throughput" in run.stdout
    assert "of the worker's CPU per message" in run.stdout
    full = result["full_path"]
    requests = -(-full["throughput"]["events"] // 200)  # every request answered 202 at last
    assert full["throughput"]["answers"]["202"] == requests
    assert set(full["throughput"]["answers"]) <= {"202", "503"}
    assert full["alert_latency"]["alerts"] > 0
    assert full["case_lookup"]["errors"] == 0 and full["case_lookup"]["requests"] > 0
    assert full["precheck"]["errors"] == 0 and full["precheck"]["requests"] > 0
    assert full["precheck"]["alternatives_listed"] > 0
    assert set(full["precheck"]["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert set(result["latency_ms"]) == {"ingest_to_alert_on_stream", "case_lookup", "precheck"}
    assert "pre-check (sample chargemaster, cheaper equivalents) at" in run.stdout
    assert "drgwatch worker" in run.stdout and "exactly correct: True" in run.stdout
