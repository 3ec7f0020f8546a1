"""What data commands print: plain lines and aligned tables, or the API's JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any


class Output:
    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json

    def json(self, answer: Any) -> bool:
        """Print the answer as JSON if asked to; True if it was."""
        if self.as_json:
            print(json.dumps(answer, indent=2, ensure_ascii=False))
        return self.as_json

    def line(self, text: str) -> None:
        print(text)

    def lines(self, texts: Sequence[str]) -> None:
        for text in texts:
            print(text)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=sys.stderr)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Columns padded to their widest cell, numbers to the right; the last left ragged."""
    cells = [[str(h) for h in headers], *[["" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [bool(rows) and all(isinstance(r[i], int) for r in rows) for i in range(len(headers))]
    return [
        "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ).rstrip()
        for row in cells
    ]


def moment(text: str | None) -> str:
    """An API timestamp as people read it: minutes, in UTC (as the API gives it)."""
    if not text:
        return ""
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
