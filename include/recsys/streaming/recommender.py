"""Recommendations for a batch of events with a constant number of SQL round trips (two), shared by the Lambdas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recsys.model.bundle import InferenceBundle
from recsys.streaming.events import UserActivityEvent
from recsys.vectordb.search import items_from_items_batch, items_from_users_batch

DEFAULT_K = 5


@dataclass(frozen=True)
class Recommendation:
    event: UserActivityEvent
    recommended: list[tuple[str, float]]
    similar: dict[str, list[tuple[str, float]]]
    model_version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.event.session_id,
            "customer_number": self.event.customer_number,
            "event_time": self.event.event_time,
            "recommended_items": [{"product_code": c, "score": round(s, 6)} for c, s in self.recommended],
            "similar_items": [
                {"for_product_code": anchor, "items": [{"product_code": c, "score": round(s, 6)} for c, s in matches]}
                for anchor, matches in self.similar.items()
            ],
            "model_version": self.model_version,
            "generated_at": datetime.now(UTC).isoformat(),
        }


class UnknownProductsError(ValueError):
    pass


class NonFiniteEmbeddingError(ValueError):
    """A schema-valid event whose features give a non-finite user embedding (e.g. a credit limit of 1e300)."""


def recommend(
    conn: Any, bundle: InferenceBundle, events: list[UserActivityEvent], k: int = DEFAULT_K
) -> list[Recommendation | ValueError]:
    """One recommendation (or the reason there is none) per event, in order; deterministic.

    An event the model cannot embed (non-finite vector) fails alone: the batch query runs on the others.
    """
    if not events:
        return []
    with np.errstate(over="ignore", invalid="ignore"):  # handled below: such an event fails alone
        user_vectors = np.asarray(bundle.user_embeddings([e.user_features() for e in events]))
    finite = np.isfinite(user_vectors).all(axis=1)
    searched = iter(items_from_users_batch(conn, user_vectors[finite], k) if finite.any() else [])
    anchors = sorted({code for e, ok in zip(events, finite, strict=True) if ok for code in e.anchor_items()})
    for_items = items_from_items_batch(conn, anchors, k)
    out: list[Recommendation | ValueError] = []
    for event, ok in zip(events, finite, strict=True):
        if not ok:
            out.append(
                NonFiniteEmbeddingError(
                    f"session {event.session_id}: the event's features give a non-finite user embedding "
                    f"(credit_limit {event.credit_limit!r} is out of the model's range)"
                )
            )
            continue
        recommended = next(searched)
        unknown = [code for code in event.anchor_items() if code not in for_items]
        if unknown:
            out.append(UnknownProductsError(f"unknown product codes (no embedding): {', '.join(unknown)}"))
            continue
        similar = {code: for_items[code] for code in event.anchor_items()}
        out.append(Recommendation(event, recommended, similar, bundle.model_version))
    return out
