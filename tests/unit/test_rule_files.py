"""Rule files: the shipped rules, the published schema, and one error naming the file,
line, rule and field for every problem."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml

from services.casecost.rules import CASE_KINDS, DEPARTMENT_KINDS, DailySpikeRule
from services.contracts import SCHEMA_DIR
from services.reference.exceptions import RuleFilesRefused
from services.reference.rules import DEFAULT_RULES_DIR, load_rule_files

RULE = """\
  - id: {id}
    version: 1
    name: {{zh: 规则, en: rule}}
    kind: {kind}
    severity: yellow
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(paths: Path | list[Path]) -> list[str]:
    with pytest.raises(RuleFilesRefused) as caught:
        load_rule_files(paths)
    assert caught.value.message == "\n".join(str(p) for p in caught.value.problems)
    return [str(problem) for problem in caught.value.problems]


def test_the_shipped_rules_cover_every_kind_and_load() -> None:
    shipped = load_rule_files(DEFAULT_RULES_DIR)
    assert {rule.kind for rule in shipped.rules} == {*CASE_KINDS, *DEPARTMENT_KINDS}
    assert all(rule.enabled and rule.name.zh and rule.name.en for rule in shipped.rules)
    assert set(shipped.sources.values()) == {str(DEFAULT_RULES_DIR / "default.yaml")}
    spike = shipped.get("daily-spike")
    assert isinstance(spike, DailySpikeRule)
    assert spike.params.factor == 3 and spike.params.min_days == 5


def test_the_shipped_rules_validate_against_the_published_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "rules.v1.json").read_text(encoding="utf-8"))
    document = yaml.safe_load((DEFAULT_RULES_DIR / "default.yaml").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    broken = {**document, "rules": [{**document["rules"][0], "kind": "guesswork"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_numbers_are_read_exactly_from_yaml_and_json(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "version: 1\nrules:\n"
        + RULE.format(id="growth", kind="cost_per_case_growth")
        + "    params: {max_growth: 0.15}\n",
    )
    write(
        tmp_path,
        "b.json",
        '{"version": 1, "rules": [{"id": "spike", "version": 1, "name": {"zh": "a", "en": "b"},'
        ' "kind": "daily_spike", "severity": "blue", "params": {"factor": 2.7}}]}',
    )
    loaded = load_rule_files(tmp_path)
    assert [rule.id for rule in loaded.rules] == ["growth", "spike"]
    assert loaded.rules[0].params.max_growth == Decimal("0.15")  # type: ignore[union-attr]
    assert str(loaded.rules[1].params.factor) == "2.7"  # type: ignore[union-attr]
    assert loaded.sources == {"growth": str(tmp_path / "a.yaml"), "spike": str(tmp_path / "b.json")}


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "version: 1\nrules:\n  - id: x\n    name: [unclosed\n")
    [problem] = refused(tmp_path)
    assert problem.startswith(f"{path}:5: not valid YAML")


def test_bad_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{"version": 1,\n "rules": [,]}')
    [problem] = refused(tmp_path)
    assert problem.startswith(f"{path}:2: not valid JSON")


def test_every_schema_violation_names_file_line_rule_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yaml",
        "version: 1\nrules:\n"
        + RULE.format(id="spike", kind="daily_spike")  # lines 3-7
        + "    params:\n      factor: many\n      min_dayz: 3\n"  # lines 8-10
        + "  - version: 1\n    kind: low_ratio_share\n    severity: purple\n",  # lines 11-13
    )
    assert refused(path) == [
        f"{path}:9: rule spike: params.factor: must be a plain decimal string"
        " (digits, one '.', optional '-')",
        f"{path}:10: rule spike: params.min_dayz: Extra inputs are not permitted",
        f"{path}:11: rule #2: id: Field required",
        f"{path}:11: rule #2: name: Field required",
        f"{path}:13: rule #2: severity: Input should be 'blue', 'yellow' or 'red'",
    ]


def test_an_unknown_or_missing_kind_lists_the_kinds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yaml",
        "version: 1\nrules:\n"
        + RULE.format(id="guess", kind="guesswork")
        + "  - id: nokind\n    version: 1\n",
    )
    unknown, missing = refused(path)
    assert unknown.startswith(f"{path}:3: rule guess: kind: unknown kind 'guesswork': one of ")
    assert "repeat_item" in unknown and "drg_over_standard_months" in unknown
    assert missing.startswith(f"{path}:8: rule nokind: kind: required: one of repeat_item")


def test_a_rule_id_defined_twice_names_both_files(tmp_path: Path) -> None:
    first = write(
        tmp_path, "a.yaml", "version: 1\nrules:\n" + RULE.format(id="x", kind="order_bound")
    )
    second = write(
        tmp_path,
        "b.yml",
        "version: 1\nrules:\n"
        + RULE.format(id="y", kind="order_bound")
        + RULE.format(id="x", kind="daily_spike"),
    )
    assert refused(tmp_path) == [f"{second}:8: rule x: id: already defined in {first}:3"]


def test_a_key_written_twice_and_a_wrong_format_version_are_refused(tmp_path: Path) -> None:
    twice = write(tmp_path, "a.yaml", "version: 1\nversion: 1\nrules: []\n")
    later = write(tmp_path, "b.yaml", "version: 2\nrules: []\n")
    listed = write(tmp_path, "c.yaml", "- just a list\n")
    assert refused(tmp_path) == [
        f"{twice}:2: not valid YAML: key 'version' written twice (first on line 1)",
        f"{later}:1: version: Input should be 1",
        f"{listed}:1: must be a mapping with `version: 1` and `rules: [...]`",
    ]


def test_no_rule_files_at_all_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "not rules")
    write(tmp_path, ".#rules.yaml", "an editor's lock file")
    [problem] = refused(tmp_path)
    assert problem == f"{tmp_path}: no *.yaml, *.yml or *.json rule files"


def test_a_rule_id_defined_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.yaml",
        "version: 1\nrules:\n"
        + RULE.format(id="x", kind="order_bound")
        + RULE.format(id="x", kind="daily_spike"),
    )
    assert refused(path) == [f"{path}:8: rule x: id: already defined in {path}:3"]
