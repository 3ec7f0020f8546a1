"""The deployment's partition sizing names the figure `drgwatch bench` reports and the
command that measures it, so the documents cannot drift from the tool."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from services.bench.runner import Outcome, Plan, partition_sizing

ROOT = Path(__file__).resolve().parents[2]
SIZING_SECTION = "### Sizing partitions and workers"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    level = heading.split(" ", 1)[0]
    following = re.search(rf"^#{{1,{len(level)}}} ", text[start + len(heading) :], re.MULTILINE)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def _bench_field() -> str:
    """The per-partition figure's name, as the bench's result carries it."""
    single = Outcome("drgwatch_one_partition", processed=1_000, seconds=1.0, cpu_seconds=0.5)
    sizing = partition_sizing(Plan(lines=1_000, cases=10), {"drgwatch_one_partition": single})
    assert sizing is not None
    (field,) = [name for name, value in sizing.items() if value == 1_000]
    return field


def _bench_commands(text: str) -> list[list[str]]:
    """Each `drgwatch bench` with its options (and their values), over line breaks."""
    options = r"(?:\s+--[a-z-]+(?:\s+[^\s`#-][^\s`;,]*)?)+"
    return [shlex.split(match.group(0)) for match in re.finditer(rf"drgwatch bench{options}", text)]


def test_the_readme_sizing_section_names_the_bench_field_and_the_rule() -> None:
    section = _section((ROOT / "README.md").read_text(encoding="utf-8"), SIZING_SECTION)
    field = _bench_field()
    assert field == "events_per_s_per_partition"
    rule = " ".join(section.split())
    assert (
        f"partitions (`DRGWATCH_TOPIC_PARTITIONS`) >= peak events/s x headroom / `{field}`" in rule
    )
    assert "workers <= partitions" in rule
    assert "--per-partition" in section


@pytest.mark.parametrize(
    "path", ["README.md", "deploy/README.md", "deploy/k8s/configmap.yaml"], ids=str
)
def test_the_documented_measuring_command_is_one_the_bench_takes(
    path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import main

    text = (ROOT / path).read_text(encoding="utf-8")
    if path == "README.md":
        text = _section(text, SIZING_SECTION)
    if path.endswith(".yaml"):  # the command in a comment, over lines that start with "#"
        text = re.sub(r"\n\s*#\s*", " ", text)
    assert _bench_field() in text
    commands = _bench_commands(text)
    assert commands, f"{path}: no drgwatch bench command"
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    options = set(re.findall(r"--[a-z-]+", capsys.readouterr().out))
    for command in commands:
        assert "--per-partition" in command, command
        used = {word for word in command if word.startswith("--")}
        assert used <= options, f"{path}: {sorted(used - options)} not options of drgwatch bench"
