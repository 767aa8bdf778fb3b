"""Figures with their baselines and targets: printed as they come, summarised, written as JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class Figure:
    """One measured value, and the raw baseline it is compared with (ratio = value / baseline)."""

    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    target: float | None = None  # bound on the ratio: a minimum if higher_is_better, else a maximum
    higher_is_better: bool = True
    bound: float | None = None  # bound on the value itself (same direction), for figures with an absolute goal
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Return value / baseline (None without a baseline)."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def ratio_met(self) -> bool | None:
        """Return whether the ratio meets ``target`` (None without a target or a baseline)."""
        ratio = self.ratio
        if self.target is None or ratio is None:
            return None
        return ratio >= self.target if self.higher_is_better else ratio <= self.target

    @property
    def bound_met(self) -> bool | None:
        """Return whether the value meets ``bound`` (None without one)."""
        if self.bound is None:
            return None
        return self.value >= self.bound if self.higher_is_better else self.value <= self.bound

    @property
    def met(self) -> bool | None:
        """Return whether the figure meets its target and its goal (None with neither)."""
        checks = [check for check in (self.ratio_met, self.bound_met) if check is not None]
        return all(checks) if checks else None

    def line(self) -> str:
        """Return the figure as one printable line."""
        text = f"{self.section:<10} {self.name:<44} {_number(self.value):>10} {self.unit:<7}"
        if self.baseline is not None:
            text += f" baseline {_number(self.baseline):>9} ({self.baseline_name})"
        ratio = self.ratio
        if ratio is not None:
            text += f"  ratio {ratio:5.2f}"
        direction = ">=" if self.higher_is_better else "<="
        if self.ratio_met is not None:
            text += f"  target {direction} {self.target:g}: {_verdict(self.ratio_met)}"
        if self.bound_met is not None:
            text += f"  goal {direction} {_number(self.bound or 0)} {self.unit}: {_verdict(self.bound_met)}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """Return the figure with its ratio and verdict, for the JSON file."""
        verdicts = {"ratio_met": self.ratio_met, "bound_met": self.bound_met, "met": self.met}
        return {**dataclasses.asdict(self), "ratio": self.ratio, **verdicts}


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


@dataclasses.dataclass
class Report:
    """Everything one run measured."""

    meta: dict[str, Any]
    figures: list[Figure] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds each section took

    def add(self, figure: Figure) -> Figure:
        """Record a figure and print it at once."""
        self.figures.append(figure)
        print(figure.line(), flush=True)
        return figure

    def summary(self) -> str:
        """Return every figure, then the targets missed."""
        lines = [figure.line() for figure in self.figures]
        missed = [f for f in self.figures if f.met is False]
        lines.append(f"Targets: {sum(f.met is True for f in self.figures)} met, {len(missed)} missed.")
        for figure in missed:
            checks = (("ratio target", figure.ratio_met), ("goal", figure.bound_met))
            what = [name for name, ok in checks if ok is False]
            lines.append(f"  missed: {figure.section} / {figure.name} ({', '.join(what)})")
        lines.append("Section times: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in self.timings.items()))
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        """Write the report as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {**self.meta, "timings": self.timings, "figures": [f.as_dict() for f in self.figures]}
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
