"""Figures the fault-injection tests measured, printed at the end of the run (conftest)."""

from __future__ import annotations

FIGURES: list[str] = []


def report(title: str, figures: dict[str, object]) -> None:
    FIGURES.append(title)
    width = max(len(name) for name in figures)
    FIGURES.extend(f"    {name:<{width}}  {value}" for name, value in figures.items())
