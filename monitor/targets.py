"""Experience targets (XLA-style): "Happiness at least +70 by week 12 after go-live".

IT metrics take targets too, beside the experience ones: ``sla_met>=95@12w``,
``reassignment_rate<=20@8w[assignment_group=L1]``, ``resolution_hours<=24@12w``
(names of ``detectors.it_metrics.DETECTED_IT_METRICS``; percentages in points,
times in hours), judged the same way on the tickets resolved in those periods.

A target is judged on the pooled value of the four periods ending at its deadline
week (one week is too noisy to judge a service by): ``met`` or ``not_met`` once the
deadline has passed; before it, ``met`` while the latest four periods already meet
it and ``at_risk`` while they do not.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from detectors.it_metrics import DETECTED_IT_METRICS

OPERATORS = (">=", "<=")
_TARGET = re.compile(
    r"^\s*(?P<metric>[a-z_]+|factor:[^<>=]+?)\s*(?P<op>>=|<=)\s*(?P<value>[+-]?\d+(?:\.\d+)?)\s*"
    r"@\s*(?P<weeks>\d+)\s*w\s*(?:\[(?P<segment>[^\]]*)\])?\s*$"
)
JUDGE_PERIODS = 4


class TargetError(ValueError):
    """A target expression that cannot be read; the message shows the expected form."""


@dataclass(frozen=True)
class Target:
    metric: str
    op: str
    value: float
    weeks: int
    segment: dict[str, str]

    def deadline(self, go_live: dt.date) -> dt.date:
        return go_live + dt.timedelta(weeks=self.weeks)

    def met_by(self, value: float) -> bool:
        return value >= self.value if self.op == ">=" else value <= self.value

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "op": self.op, "value": self.value, "weeks": self.weeks, "segment": self.segment}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        return cls(data["metric"], data["op"], float(data["value"]), int(data["weeks"]), dict(data.get("segment") or {}))

    def text(self) -> str:
        where = "" if not self.segment else "[" + ",".join(f"{k}={v}" for k, v in self.segment.items()) + "]"
        return f"{self.metric}{self.op}{self.value:g}@{self.weeks}w{where}"


EXPERIENCE_METRICS = ("happiness", "lost_time", "volume")


def parse_target(text: str, known_metrics: tuple[str, ...] = (*EXPERIENCE_METRICS, *DETECTED_IT_METRICS)) -> Target:
    """Read ``happiness>=70@12w``, ``lost_time<=60@12w[country=Finland]`` or ``sla_met>=95@12w``."""
    match = _TARGET.match(text)
    if not match:
        raise TargetError(
            f"cannot read target {text!r}: expected METRIC>=VALUE@WEEKSw or METRIC<=VALUE@WEEKSw, "
            "optionally followed by [dimension=value,...], e.g. happiness>=70@12w"
        )
    metric = match["metric"]
    if metric not in known_metrics and not metric.startswith("factor:"):
        raise TargetError(f"unknown metric {metric!r} in target {text!r}: use {', '.join(known_metrics)} or factor:<name>")
    segment: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (match["segment"] or "").split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise TargetError(f"segment part {part!r} of target {text!r} must be dimension=value")
        segment[name.strip()] = value.strip()
    weeks = int(match["weeks"])
    if weeks < 1:
        raise TargetError(f"target {text!r}: the deadline must be at least week 1")
    return Target(metric, match["op"], float(match["value"]), weeks, segment)
