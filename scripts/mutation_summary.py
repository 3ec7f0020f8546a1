"""Print what `mutmut run` found, per mutated file and in total, and every survivor.

Run from the repository root with the mutation venv's Python (`make mutation` does),
after `mutmut run` has written its verdicts next to the mutated copies in mutants/.
A mutant that makes the tests time out counts as caught, as mutmut's own score does.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

CAUGHT = ("killed", "timeout")


def main() -> int:
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutation results under mutants/: run `make mutation` first")
        return 1
    totals: Counter[str] = Counter()
    survivors: list[str] = []
    print(f"{'file':<34} {'mutants':>7} {'caught':>7} {'survived':>8} {'other':>6} {'score':>7}")
    for meta in metas:
        verdicts = json.loads(meta.read_text())["exit_code_by_key"]
        if not verdicts:
            continue
        counts = Counter(status_by_exit_code[code] for code in verdicts.values())
        totals.update(counts)
        survivors += sorted(
            name for name, code in verdicts.items() if status_by_exit_code[code] not in CAUGHT
        )
        _row(str(meta.relative_to("mutants"))[: -len(".meta")], counts)
    _row("total", totals)
    others = {status: n for status, n in totals.items() if status not in (*CAUGHT, "survived")}
    if others:
        listed = ", ".join(f"{n} {status}" for status, n in sorted(others.items()))
        print(f"other verdicts: {listed}")
    if survivors:
        print(f"\nnot caught ({len(survivors)}); `mutmut show NAME` prints the change:")
        for name in survivors:
            print(f"  {name}")
    return 0


def _row(label: str, counts: Counter[str]) -> None:
    total = sum(counts.values())
    caught = sum(counts[status] for status in CAUGHT)
    other = total - caught - counts["survived"]
    score = f"{100 * caught / total:.1f}%" if total else "-"
    print(f"{label:<34} {total:>7} {caught:>7} {counts['survived']:>8} {other:>6} {score:>7}")


if __name__ == "__main__":
    sys.exit(main())
