"""`drgwatch rules validate` as a user runs it: the rules found, or every problem and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_data_commands import drgwatch

GOOD = """\
version: 1
rules:
  - id: repeat-ct
    version: 2
    name: {zh: 重复CT, en: Repeated CT}
    kind: repeat_item
    severity: red
    departments: [CARD]
    params: {categories: [exam], within_days: 7}
"""


async def test_the_shipped_rules_validate(tmp_path: Path) -> None:
    ran = await drgwatch(tmp_path, "rules", "validate")
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[0].split() == [
        "id",
        "version",
        "kind",
        "severity",
        "enabled",
        "applies",
        "to",
        "file",
    ]
    assert any(line.split()[:3] == ["repeat-exam", "1", "repeat_item"] for line in lines)
    assert lines[-1] == "9 rules (9 enabled) from 1 file: valid"
    assert ran.err == ""


async def test_a_directory_of_rules_is_listed_with_scope_and_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "cardiology.yaml").write_text(GOOD, encoding="utf-8")
    ran = await drgwatch(tmp_path, "rules", "validate", str(rules))
    assert ran.code == 0, ran.err
    row = ran.out.splitlines()[1].split()
    assert row == [
        "repeat-ct",
        "2",
        "repeat_item",
        "red",
        "on",
        "every",
        "hospital;",
        "departments",
        "CARD",
        "cardiology.yaml",
    ]
    as_json = await drgwatch(tmp_path, "rules", "validate", str(rules), "--json")
    [rule] = json.loads(as_json.out)
    assert rule["params"] == {
        "categories": ["exam"],
        "within_days": 7,
        "exclude_items": [],
        "min_unit_price": "0",
    }


async def test_problems_are_listed_on_stderr_with_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(GOOD, encoding="utf-8")
    broken = GOOD.replace("within_days: 7", "within_days: -1").replace("version: 2", "version: 3")
    (rules / "b.yaml").write_text(broken.replace("kind: repeat_item", "kind: repeat_itme"))
    ran = await drgwatch(tmp_path, "rules", "validate", str(rules))
    assert ran.code == 2 and ran.out == ""
    assert "Traceback" not in ran.err
    duplicate = (
        f"  {rules / 'b.yaml'}:3: rule repeat-ct: id: already defined in {rules / 'a.yaml'}:3"
    )
    assert ran.err.splitlines() == [
        "drgwatch rules validate: 2 problems",
        duplicate,
        f"  {rules / 'b.yaml'}:3: rule repeat-ct: kind: unknown kind 'repeat_itme': one of "
        "repeat_item, order_bound, daily_spike, category_share, stay_over_average, "
        "same_day_repeats, cost_per_case_growth, low_ratio_share, drg_over_standard_months",
    ]
    (rules / "b.yaml").write_text(broken)
    again = await drgwatch(tmp_path, "rules", "validate", str(rules))
    assert again.code == 2
    assert again.err.splitlines() == [
        "drgwatch rules validate: 2 problems",
        duplicate,
        f"  {rules / 'b.yaml'}:9: rule repeat-ct: params.within_days: "
        "Input should be greater than or equal to 1",
    ]


async def test_a_missing_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    ran = await drgwatch(tmp_path, "rules", "validate", str(tmp_path / "nowhere"))
    assert ran.failed_with_one_line() == (
        f"drgwatch rules validate: {tmp_path / 'nowhere'}: no such file or directory"
    )
    assert ran.code == 2


async def test_reload_imports_the_files_and_prints_what_changed(
    tmp_path: Path, data_dir: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "cardiology.yaml").write_text(GOOD, encoding="utf-8")
    where = ["--data-dir", str(data_dir)]
    first = await drgwatch(tmp_path, "rules", "reload", str(rules), *where)
    assert first.code == 0, first.err
    lines = first.out.splitlines()
    assert lines[0] == "repeat-ct: added (version 2)"
    assert lines[-1].startswith(f"{rules}: 1 added; registry updated (generation ")
    again = await drgwatch(tmp_path, "rules", "reload", str(rules), *where)
    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        f"{rules}: 1 unchanged; nothing to change (generation "
        + lines[-1].rsplit("generation ", 1)[1]
    ]
    # changed without a new version: refused, naming the file and the rule
    (rules / "cardiology.yaml").write_text(GOOD.replace("within_days: 7", "within_days: 5"))
    refused = await drgwatch(tmp_path, "rules", "reload", str(rules), *where)
    assert refused.code == 1
    assert "cardiology.yaml: rule repeat-ct: version:" in refused.err
    assert "bump its version" in refused.err
    # through DRGWATCH_RULES_DIR, bumped
    (rules / "cardiology.yaml").write_text(
        GOOD.replace("within_days: 7", "within_days: 5").replace("version: 2", "version: 3")
    )
    bumped = await drgwatch(
        tmp_path, "rules", "reload", *where, env={"DRGWATCH_RULES_DIR": str(rules)}
    )
    assert bumped.code == 0, bumped.err
    assert bumped.out.splitlines()[0] == "repeat-ct: version 2 -> 3"
