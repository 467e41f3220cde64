"""Offers in the order a user would want them, and why.

Score (seconds, lowest first) = time until the session is estimated to be ready (offer start +
preparing duration, from now; never negative) + a penalty when the data must be moved to the
site + a penalty when the image must be pulled, or one penalty for unknown locality when the
broker did not say. Ties go to the earlier start, then site name and offer id, so the order is
total and stable. Every ranked offer carries its score parts and one reason per part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worksteps.execution.offers import Offer
from worksteps.execution.settings import RankingSettings
from worksteps.schema.isotime import format_duration

__all__ = ["RankedOffer", "ScoredOffer", "rank_offers", "rank_scored", "score_offer", "scorer"]


@dataclass(frozen=True)
class ScoredOffer:
    """An offer with its score parts and the reason for each (:func:`score_offer`)."""

    offer: Offer
    score: dict[str, float | None]
    reasons: list[str]


@dataclass(frozen=True)
class RankedOffer:
    offer: Offer
    rank: int
    score: dict[str, float | None]
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return self.offer.as_dict() | {
            "rank": self.rank,
            "score": self.score,
            "reasons": self.reasons,
        }


def _human(value: float) -> str:
    """A human-sized duration: ``45 s``, ``2 min 5 s``, ``1 h 3 min``."""
    seconds = round(value)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def score_offer(
    offer: Offer, weights: RankingSettings, now: datetime
) -> tuple[dict[str, float | None], list[str]]:
    """The score parts of one offer and the reason for each."""
    reasons: list[str] = []
    ready = offer.ready
    ready_in: float | None = None
    if ready is None or offer.start is None:
        reasons.append("the offer has no schedule: ranked after every scheduled offer")
    else:
        ready_in = max(0.0, (ready - now).total_seconds())
        starts = max(0.0, (offer.start - now).total_seconds())
        reasons.append(
            f"ready in {_human(ready_in)} (starts in {_human(starts)}, "
            f"preparing {format_duration(offer.preparing)})"
        )
    data = image = unknown = 0.0
    if offer.data is None and offer.image is None:
        unknown = weights.unknown_locality
        reasons.append(f"data locality not reported by the broker: +{unknown:g} s")
    else:
        if offer.data == "remote":
            data = weights.data_remote
            reasons.append(f"data must be moved to {offer.site}: +{data:g} s")
        elif offer.data == "local":
            reasons.append(f"data already at {offer.site}: +0 s")
        if offer.image == "remote":
            image = weights.image_remote
            reasons.append(f"image must be pulled: +{image:g} s")
        elif offer.image == "cached":
            reasons.append("image cached at the site: +0 s")
    total = None if ready_in is None else ready_in + data + image + unknown
    score: dict[str, float | None] = {
        "ready_in": None if ready_in is None else round(ready_in, 3),
        "data": data,
        "image": image,
        "unknown_locality": unknown,
        "total": None if total is None else round(total, 3),
    }
    return score, reasons


def scorer(weights: RankingSettings, now: datetime) -> Callable[[Offer], ScoredOffer]:
    """Scores offers against ``now`` (when the user asked): for offers scored one by one as
    their brokers answer."""
    return lambda offer: ScoredOffer(offer, *score_offer(offer, weights, now))


def rank_offers(
    offers: Sequence[Offer], weights: RankingSettings, now: datetime
) -> list[RankedOffer]:
    """Every offer once (by uuid), best first, ranks 1..n, each with its score parts and
    reasons."""
    score = scorer(weights, now)
    return rank_scored([score(offer) for offer in offers])


def rank_scored(scored: Sequence[ScoredOffer]) -> list[RankedOffer]:
    """:func:`rank_offers` of offers already scored (against the same ``now``)."""
    unique: dict[str, ScoredOffer] = {}
    for item in scored:
        unique.setdefault(item.offer.uuid, item)

    def key(item: ScoredOffer) -> tuple[Any, ...]:
        offer, total = item.offer, item.score["total"]
        start = offer.start.timestamp() if offer.start is not None else float("inf")
        return (total is None, total or 0.0, start, offer.site, offer.uuid)

    ranked: list[RankedOffer] = []
    for rank, item in enumerate(sorted(unique.values(), key=key), start=1):
        offer, score, reasons = item.offer, item.score, item.reasons
        total = score["total"]
        summary = (
            f"rank {rank}: score {total:.0f} s (lowest first)"
            if total is not None
            else f"rank {rank}: no score"
        )
        ranked.append(RankedOffer(offer, rank, score, [*reasons, summary]))
    return ranked
