"""The accessibility check of a page: axe-core (bundled by axe-playwright-python, so
nothing is fetched at test time) run in the page as it stands."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe

# the impacts that fail a view; minor and moderate findings are listed beside them
FAILING = ("serious", "critical")

_axe = Axe()


def _describe(violation: dict[str, Any]) -> str:
    lines = [f"- {violation['id']} ({violation['impact']}): {violation['help']}"]
    for node in violation["nodes"]:
        target = " ".join(str(part) for part in node["target"])
        summary = str(node.get("failureSummary") or "").replace("\n", " ")
        lines.append(f"    {target}: {node['html'][:160]}  {summary}")
    return "\n".join(lines)


# Element Plus draws a table's lines with pseudo-elements, behind which axe cannot tell a
# cell's background (it leaves their text "needs review"); a second pass hides those lines
# (they carry no text) and checks the contrast of the tables' text alone
TABLE_LINES = (
    ".el-table::before, .el-table::after, .el-table *::before, .el-table *::after"
    " { display: none !important; }"
)


def violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page (WCAG 2.x A and AA, and axe's best practices),
    then those of the contrast of text in tables."""
    results = _axe.run(page, options={"resultTypes": ["violations"]})
    found = list(results.response["violations"])
    if page.locator(".el-table").count():
        lines = page.add_style_tag(content=TABLE_LINES)
        try:
            tables = _axe.run(
                page,
                context={"include": [[".el-table"]]},
                options={"runOnly": ["color-contrast"], "resultTypes": ["violations"]},
            )
        finally:
            lines.evaluate("element => element.remove()")
        for violation in tables.response["violations"]:
            found.append({**violation, "help": f"{violation['help']} (in a table)"})
    return found


def failing(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [violation for violation in found if violation["impact"] in FAILING]


def report(where: str, found: list[dict[str, Any]]) -> str:
    """Every violation on one page, the failing ones first."""
    ordered = sorted(found, key=lambda violation: violation["impact"] not in FAILING)
    return f"{where}: {len(failing(found))} serious or critical\n" + "\n".join(
        _describe(violation) for violation in ordered
    )
