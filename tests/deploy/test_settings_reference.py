"""The README's settings table names exactly the DRGWATCH_* variables the code reads.

The code's settings are found, not listed: every class under services/ that derives from
a `...Settings` class is imported and, when it is a pydantic-settings class, each field
gives the variable its env prefix and name (or alias) make; every
`os.environ.get("DRGWATCH_...")` / `os.getenv(...)` / `os.environ[...]` read in the source
counts too.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
README = ROOT / "README.md"
TABLE_SECTION = "## Configuration and production"
PROFILES = {"both", "embedded", "production"}
ENVIRON_READ = re.compile(
    r"""(?:environ\.get|getenv|environ\s*\[)\s*\(?\s*["'](DRGWATCH_[A-Z0-9_]+)["']"""
)


@dataclass(frozen=True)
class Setting:
    variable: str
    where: str  # e.g. services.settings.CommonSettings.mode


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _settings_class_names(tree: ast.Module) -> list[str]:
    """Classes whose bases include a name ending in `Settings` (pydantic-settings or not)."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = [
                base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                for base in node.bases
            ]
            if any(base.endswith("Settings") for base in bases):
                names.append(node.name)
    return names


def settings_in_code() -> dict[str, Setting]:
    found: dict[str, Setting] = {}
    for path in sorted(SERVICES.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        relative = path.relative_to(ROOT).as_posix()
        for match in ENVIRON_READ.finditer(source):
            found.setdefault(match.group(1), Setting(match.group(1), f"{relative} (environ)"))
        class_names = _settings_class_names(ast.parse(source))
        if not class_names:
            continue
        module = importlib.import_module(_module_name(path))
        for class_name in class_names:
            cls = getattr(module, class_name)
            if not (isinstance(cls, type) and issubclass(cls, BaseSettings)):
                continue
            prefix = str(cls.model_config.get("env_prefix", ""))
            for name, info in cls.model_fields.items():
                alias = info.validation_alias or info.alias
                variable = alias if isinstance(alias, str) else f"{prefix}{name}".upper()
                owner = next(c for c in cls.__mro__ if name in vars(c).get("__annotations__", {}))
                where = f"{owner.__module__}.{owner.__name__}.{name}"
                found.setdefault(variable, Setting(variable, where))
    return found


@dataclass(frozen=True)
class Row:
    variable: str
    default: str
    profile: str
    meaning: str


def readme_table() -> list[Row]:
    """The rows of the settings table in the README's configuration section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(TABLE_SECTION) :]
    section = section[: section.index("\n## ", len(TABLE_SECTION))]
    header = "| variable | default | profile | meaning |"
    lines = section[section.index(header) :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) >= 4, f"README settings row with fewer than 4 cells: {line}"
        variable, default, profile, *meaning = cells
        rows.append(Row(variable.strip("`"), default, profile, "|".join(meaning)))
    return rows


def test_the_code_reads_the_settings_everyone_knows() -> None:
    """The collection itself works: a few settings of each kind are found where they are."""
    found = settings_in_code()
    assert found["DRGWATCH_MODE"].where == "services.settings.CommonSettings.mode"
    assert "WorkerSettings" in found["DRGWATCH_BATCH_MAX_EVENTS"].where
    assert "WebhookSettings" in found["DRGWATCH_WEBHOOK_MAX_ATTEMPTS"].where
    assert "IntakeSettings" in found["DRGWATCH_INTAKE_HOSPITALS"].where
    assert "DRGWATCH_API_KEY" in found  # CommandSettings, and read by `drgwatch demo`
    assert len(found) >= 70


def test_every_row_is_one_variable_with_a_default_a_profile_and_a_meaning() -> None:
    rows = readme_table()
    assert rows, "no settings table in the README's configuration section"
    for row in rows:
        assert re.fullmatch(r"DRGWATCH_[A-Z0-9_]+", row.variable), (
            f"README settings table: one variable per row, in backticks, not {row.variable!r}"
        )
        assert row.default, f"README settings table: {row.variable} has no default"
        assert row.profile in PROFILES, (
            f"README settings table: {row.variable} profile {row.profile!r}, expected one of"
            f" {sorted(PROFILES)}"
        )
        assert row.meaning, f"README settings table: {row.variable} has no meaning"
    variables = [row.variable for row in rows]
    twice = sorted({v for v in variables if variables.count(v) > 1})
    assert not twice, f"README settings table lists these twice: {twice}"


def test_every_setting_of_the_code_is_in_the_readme_table() -> None:
    listed = {row.variable for row in readme_table()}
    missing = [
        setting for name, setting in sorted(settings_in_code().items()) if name not in listed
    ]
    assert not missing, (
        "add a row to the README settings table (Configuration and production) for "
        + "; ".join(f"{setting.variable} (read by {setting.where})" for setting in missing)
    )


def test_the_readme_table_lists_only_settings_the_code_reads() -> None:
    read = settings_in_code()
    stale = sorted(row.variable for row in readme_table() if row.variable not in read)
    assert not stale, (
        f"the README settings table lists {', '.join(stale)}, which no settings class and no"
        " environment read under services/ knows: remove the row(s) or restore the setting"
    )
