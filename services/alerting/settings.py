"""Settings of the Faust worker."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from services.casecost.targets import WatchRules
from services.settings import CommonSettings


def worker_tables_dir(data_dir: Path) -> Path:
    """Where the workers of this data directory keep their local table stores, one
    directory per running worker (see services/alerting/casestore.py)."""
    return data_dir / "worker-tables"


class WorkerSettings(CommonSettings):
    # where the cases table is kept between restarts: "rocksdb", on disk under
    # worker_tables_dir (a restart reads only the changelog written since), or "memory"
    # (a restart reads the whole changelog)
    worker_store: Literal["rocksdb", "memory"] = "rocksdb"
    # tansu (and a small cluster) join a group in seconds with these; see README
    rebalance_timeout: float = Field(default=3.0, gt=0)
    session_timeout: float = Field(default=6.0, gt=0)
    heartbeat_interval: float = Field(default=1.0, gt=0)
    commit_every: int = Field(default=10_000, ge=1)
    commit_interval: float = Field(default=1.0, gt=0)
    stream_buffer_maxsize: int = Field(default=4096, ge=1)
    # the agent applies events in batches of up to this many, or what arrived within
    # batch_seconds; each changed case is written to the changelog once per batch
    batch_max_events: int = Field(default=1000, ge=1)
    batch_seconds: float = Field(default=0.01, gt=0)
    # Records share produce batches up to this size. tansu (the embedded broker) answers
    # a partition's end offset with the base offset of its last record batch + 1, and
    # Faust recovers a table only up to that end; so after each batch the worker closes
    # every changelog partition it wrote with a one-record batch (a tombstone of
    # END_MARKER_KEY, see worker.py), which makes the reported end the true one. A worker
    # killed between its states and its marker leaves a batch unclosed: recovery confirms
    # every end with a fetch as well (transport.confirmed_ends).
    producer_batch_bytes: int = Field(default=524288, ge=1)
    # case states kept decoded between batches (see worker.LiveStates)
    live_states: int = Field(default=4096, ge=0)
    # log level of the Faust worker itself (DRGWATCH_WORKER_LOG_LEVEL)
    worker_log_level: str = "WARNING"
    web_enabled: bool = False
    web_port: int = 6066
    reference_poll_seconds: float = Field(default=2.0, gt=0)
    heartbeat_seconds: float = Field(default=1.0, gt=0)
    projector_batch: int = Field(default=2000, ge=1)
    projector_wait_ms: int = Field(default=100, ge=1)
    # how long a case waits for a missing ledger sequence number before applying what
    # arrived after it (gaps normally close within the relay's few seconds)
    sequence_gap_seconds: float = Field(default=300.0, gt=0)
    sequence_gap_check_seconds: float = Field(default=30.0, gt=0)
    # how often departments' paces against their targets are judged (targetwatch.py)
    target_check_seconds: float = Field(default=30.0, gt=0)
    # from which local day of a month and of a year a department's pace is alerted on,
    # and how many discharged cases its cost per case needs (casecost/targets.WatchRules)
    target_watch_month_from_day: int = Field(default=7, ge=1, le=31)
    target_watch_year_from_day: int = Field(default=30, ge=1, le=366)
    target_watch_min_cases: int = Field(default=10, ge=1)
    # how often the department monitoring rules are judged over this month so far and the
    # month just closed (rulewatch.py)
    rule_check_seconds: float = Field(default=60.0, gt=0)

    @property
    def target_watch_rules(self) -> WatchRules:
        return WatchRules(
            month_from_day=self.target_watch_month_from_day,
            year_from_day=self.target_watch_year_from_day,
            min_cases=self.target_watch_min_cases,
        )
