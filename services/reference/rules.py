"""Rule files: read monitoring rules from a directory of YAML and JSON files.

`load_rule_files(paths)` reads every *.yaml, *.yml and *.json file of a directory (or the
files given), validates each against the rule format (services/casecost/rules.py, published
as schemas/rules.v1.json) and returns one `RuleSet`, the files in name order and the rules
in file order. Anything wrong in any file refuses the whole set with one `RuleFilesRefused`
naming, for every problem, the file, the line where it can tell, the rule (its id, or its
position `#3` when it has none) and the field: unreadable YAML or JSON, a key written twice,
schema violations, an unknown kind, and a rule id defined twice, in one file or across files.

Numbers are read exactly: a YAML or JSON `0.15` becomes Decimal("0.15") from its text,
never a binary float.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from services.casecost.rules import CASE_KINDS, DEPARTMENT_KINDS, RuleFile, RuleSet
from services.reference.exceptions import RuleFilesRefused

DEFAULT_RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_FILE_SUFFIXES = (".yaml", ".yml", ".json")
_KINDS = frozenset((*CASE_KINDS, *DEPARTMENT_KINDS))
_UNION_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One thing wrong in a rule file."""

    file: str
    message: str
    line: int | None = None
    rule: str | None = None  # the rule's id, or "#N" (its position) when it has none
    field: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.rule is not None:
            parts.append(f"rule {self.rule}")
        if self.field is not None:
            parts.append(self.field)
        return ": ".join([*parts, self.message])


def rule_files(paths: Path | Iterable[Path]) -> list[Path]:
    """The rule files of directories (their *.yaml, *.yml, *.json but hidden ones, by
    name) and files."""
    found: list[Path] = []
    for path in [paths] if isinstance(paths, Path) else paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    # an editor's hidden lock or backup file is not a rule file
                    if p.suffix in RULE_FILE_SUFFIXES and not p.name.startswith(".") and p.is_file()
                )
            )
        else:
            found.append(path)
    return found


def load_rule_files(paths: Path | Iterable[Path]) -> RuleSet:
    """Every rule of the files (see the module's docstring); raises RuleFilesRefused."""
    files = rule_files(paths)
    problems: list[RuleProblem] = []
    if not files:
        shown = ", ".join(str(p) for p in ([paths] if isinstance(paths, Path) else paths))
        raise RuleFilesRefused(
            [RuleProblem(shown or "(none)", "no *.yaml, *.yml or *.json rule files")]
        )
    rules = []
    sources: dict[str, str] = {}
    lines: dict[str, int | None] = {}
    for path in files:
        name = str(path)
        parsed = _parse(path, problems)
        if parsed is None:
            continue
        data, positions = parsed
        # ids are checked on what was written, so a file with other problems still
        # reports an id defined twice
        raw_rules = data.get("rules")
        for index, raw in enumerate(raw_rules if isinstance(raw_rules, list) else []):
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(rule_id, str):
                continue
            line = positions.line_of(data, ("rules", index))
            if rule_id in sources:
                earlier = sources[rule_id]
                at = "" if lines[rule_id] is None else f":{lines[rule_id]}"
                problems.append(
                    RuleProblem(name, f"already defined in {earlier}{at}", line, rule_id, "id")
                )
                continue
            sources[rule_id] = name
            lines[rule_id] = line
        try:
            rule_file = RuleFile.model_validate(data)
        except ValidationError as error:
            problems.extend(_schema_problems(name, data, positions, error))
            continue
        rules.extend(rule_file.rules)
    if problems:
        raise RuleFilesRefused(problems)
    return RuleSet(rules=tuple(rules), sources=sources)


# --- reading a file ---------------------------------------------------------------------------


class _Positions:
    """The line of each key of each mapping read, and of each item of each list."""

    def __init__(self) -> None:
        self.lines: dict[int, dict[Any, int]] = {}

    def line_of(self, data: Any, location: Iterable[Any]) -> int | None:
        """The line of the deepest part of `location` found in `data`."""
        line = None
        node = data
        for part in location:
            known = self.lines.get(id(node))
            if known is None or part not in known:
                break
            line = known[part]
            node = node[part]
        return line


class _RuleYamlLoader(yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML with exact decimals, refusing a key written twice, noting lines."""

    positions: _Positions

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} written twice (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=True)
        self.positions.lines[id(mapping)] = seen
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        items: list[Any] = super().construct_sequence(node, deep=True)
        self.positions.lines[id(items)] = {
            index: child.start_mark.line + 1 for index, child in enumerate(node.value)
        }
        return items

    def construct_exact_decimal(self, node: yaml.ScalarNode) -> Decimal | str:
        text = str(self.construct_scalar(node)).replace("_", "")
        try:
            return Decimal(text)
        except InvalidOperation:
            return text


_RuleYamlLoader.add_constructor(
    "tag:yaml.org,2002:float",
    _RuleYamlLoader.construct_exact_decimal,
)
_RuleYamlLoader.add_constructor(
    "tag:yaml.org,2002:seq",
    _RuleYamlLoader.construct_sequence,
)
_RuleYamlLoader.add_constructor(
    "tag:yaml.org,2002:map",
    _RuleYamlLoader.construct_mapping,
)


def _parse(path: Path, problems: list[RuleProblem]) -> tuple[Any, _Positions] | None:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(RuleProblem(name, f"cannot be read: {error}"))
        return None
    positions = _Positions()
    if path.suffix == ".json":
        try:
            data = json.loads(text, parse_float=Decimal, object_pairs_hook=_json_object)
        except json.JSONDecodeError as error:
            problems.append(RuleProblem(name, f"not valid JSON: {error.msg}", error.lineno))
            return None
        except ValueError as error:
            problems.append(RuleProblem(name, f"not valid JSON: {error}"))
            return None
    else:
        loader = _RuleYamlLoader(text)
        loader.positions = positions
        try:
            data = loader.get_single_data()
        except yaml.YAMLError as error:
            problems.append(_yaml_problem(name, error))
            return None
        finally:
            loader.dispose()
    if not isinstance(data, dict):
        problems.append(
            RuleProblem(name, "must be a mapping with `version: 1` and `rules: [...]`", 1)
        )
        return None
    return data, positions


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise ValueError(f"key {key!r} written twice")
        mapping[key] = value
    return mapping


def _yaml_problem(name: str, error: yaml.YAMLError) -> RuleProblem:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    return RuleProblem(name, message, None if mark is None else mark.line + 1)


def _schema_problems(
    name: str, data: Mapping[str, Any], positions: _Positions, error: ValidationError
) -> list[RuleProblem]:
    raw_rules = data.get("rules")
    problems = []
    for detail in error.errors(include_url=False):
        location = list(detail["loc"])
        message = str(detail["msg"]).removeprefix("Value error, ")
        line = positions.line_of(data, location)
        rule = None
        if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
            index = location[1]
            raw = raw_rules[index] if isinstance(raw_rules, list) else None
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            rule = rule_id if isinstance(rule_id, str) and rule_id else f"#{index + 1}"
            location = location[2:]
            if location and location[0] in _KINDS:  # the union's tag
                location = location[1:]
            line = positions.line_of(data, ["rules", index, *location]) or line
        if detail["type"] in _UNION_TAG_ERRORS:
            location = [*location, "kind"]
            given = (detail.get("ctx") or {}).get("tag")
            known = ", ".join(_KINDS_IN_ORDER)
            message = (
                f"unknown kind {given!r}: one of {known}" if given else f"required: one of {known}"
            )
        field = ".".join(str(part) for part in location) or None
        problems.append(RuleProblem(name, message, line, rule, field))
    return problems


_KINDS_IN_ORDER = (*CASE_KINDS, *DEPARTMENT_KINDS)
