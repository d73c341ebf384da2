"""Recommendations for a batch of events with a constant number of SQL round trips (two), shared by the Lambdas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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


def recommend(
    conn: Any, bundle: InferenceBundle, events: list[UserActivityEvent], k: int = DEFAULT_K
) -> list[Recommendation | UnknownProductsError]:
    """One recommendation (or the reason there is none) per event, in order; deterministic."""
    if not events:
        return []
    user_vectors = bundle.user_embeddings([e.user_features() for e in events])
    for_users = items_from_users_batch(conn, user_vectors, k)
    anchors = sorted({code for e in events for code in e.anchor_items()})
    for_items = items_from_items_batch(conn, anchors, k)
    out: list[Recommendation | UnknownProductsError] = []
    for event, recommended in zip(events, for_users, strict=True):
        unknown = [code for code in event.anchor_items() if code not in for_items]
        if unknown:
            out.append(UnknownProductsError(f"unknown product codes (no embedding): {', '.join(unknown)}"))
            continue
        similar = {code: for_items[code] for code in event.anchor_items()}
        out.append(Recommendation(event, recommended, similar, bundle.model_version))
    return out
