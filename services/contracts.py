"""JSON Schema files in schemas/: the event, alert and case contracts shared by all services,
and the format of monitoring rule files.

They are generated from the pydantic models so the two cannot drift; a test compares
them, and `drgwatch schemas export` rewrites them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.alerting.alerts.schemas import AlertOut
from services.api.cases.schemas import PublishedCase
from services.casecost.events import EVENT_ADAPTER
from services.casecost.rules import RuleFile

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


def contracts() -> dict[str, dict[str, Any]]:
    event = EVENT_ADAPTER.json_schema(mode="validation")
    event["$id"] = "https://drgwatch.example/schemas/event.v1.json"
    event["title"] = "drgwatch event v1"
    alert = AlertOut.model_json_schema(mode="serialization")
    alert["$id"] = "https://drgwatch.example/schemas/alert.v1.json"
    case = PublishedCase.model_json_schema(mode="serialization")
    case["$id"] = "https://drgwatch.example/schemas/case.v1.json"
    rules = RuleFile.model_json_schema(mode="validation")
    rules["$id"] = "https://drgwatch.example/schemas/rules.v1.json"
    return {
        "event.v1.json": event,
        "alert.v1.json": alert,
        "case.v1.json": case,
        "rules.v1.json": rules,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in contracts().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
