"""Which feedback factors are good news: a factor's sign, read from who cites it.

Survey tools offer positive factors ("Knowledgeable agent") to respondents who
rate 9-10 and negative ones ("Long waiting time") to those who rate 0-6. So the
ratings of the respondents citing a factor tell its sign: of its citations from
either end of the scale, the share that comes from 9-10 is near 1 for a positive
factor and near 0 for a negative one. A Wilson interval on that share decides:
above one half with confidence is positive, below is negative; a factor with too
few citations from either end, or an interval straddling one half, is undecided
(and says why). A configured polarity always wins over the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from detectors.metrics import _wilson, z_value

MIN_CITATIONS = 20  # citations from 9-10 and 0-6 together, to read a sign at all


class FactorPolarity(StrEnum):
    POSITIVE = "positive"  # cited by the happy: citing it less is bad news
    NEGATIVE = "negative"  # cited by the unhappy: citing it more is bad news
    NEUTRAL = "neutral"  # configured: neither; its changes are not findings
    UNDECIDED = "undecided"  # the data cannot tell; treated as negative, the survey default


@dataclass(frozen=True)
class Polarity:
    factor: str
    polarity: FactorPolarity
    source: str  # "config" or "data"
    from_promoters: int  # citations from respondents rating 9-10
    from_detractors: int  # citations from respondents rating 0-6
    share_promoters: float  # from_promoters / both, NaN without any
    ci_low: float
    ci_high: float
    reason: str

    @property
    def worse_when_rising(self) -> bool:
        return self.polarity in (FactorPolarity.NEGATIVE, FactorPolarity.UNDECIDED)

    def as_dict(self) -> dict[str, object]:
        return {
            "factor": self.factor, "polarity": str(self.polarity), "source": self.source,
            "from_promoters": self.from_promoters, "from_detractors": self.from_detractors,
            "share_promoters": None if not np.isfinite(self.share_promoters) else round(self.share_promoters, 3),
            "ci_low": None if not np.isfinite(self.ci_low) else round(self.ci_low, 3),
            "ci_high": None if not np.isfinite(self.ci_high) else round(self.ci_high, 3),
            "reason": self.reason,
        }


def learn_polarity(
    factor: str,
    from_promoters: float,
    from_detractors: float,
    *,
    configured: str | None = None,
    min_citations: int = MIN_CITATIONS,
    confidence: float = 0.95,
) -> Polarity:
    """The polarity of one factor from its citations at either end of the scale."""
    both = from_promoters + from_detractors
    share = from_promoters / both if both else float("nan")
    low, high = (float(v[0]) for v in _wilson(np.array([from_promoters]), np.array([both]), z_value(confidence)))
    counts = (int(from_promoters), int(from_detractors), share, low, high)
    if configured is not None:
        return Polarity(factor, FactorPolarity(configured), "config", *counts, "set in the configuration")
    if both < min_citations:
        return Polarity(factor, FactorPolarity.UNDECIDED, "data", *counts,
                        f"too few citations from 9-10 or 0-6 ({int(both)} < {min_citations})")
    if low > 0.5:
        polarity, reason = FactorPolarity.POSITIVE, "cited mostly by respondents rating 9-10"
    elif high < 0.5:
        polarity, reason = FactorPolarity.NEGATIVE, "cited mostly by respondents rating 0-6"
    else:
        polarity, reason = FactorPolarity.UNDECIDED, "cited as often by 9-10 as by 0-6 respondents"
    return Polarity(factor, polarity, "data", *counts, reason)


def factor_polarities(
    cited_by_promoters: Mapping[str, float],
    cited_by_detractors: Mapping[str, float],
    configured: Mapping[str, str] | None = None,
    **options: object,
) -> dict[str, Polarity]:
    """Every factor's polarity; ``configured`` (factor -> positive|negative|neutral) wins."""
    by_name = {name.casefold(): value for name, value in (configured or {}).items()}
    return {
        factor: learn_polarity(
            factor, cited_by_promoters.get(factor, 0.0), cited_by_detractors.get(factor, 0.0),
            configured=by_name.get(factor.casefold()), **options,  # type: ignore[arg-type]
        )
        for factor in cited_by_promoters
    }
