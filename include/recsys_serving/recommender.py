"""Recommendations for a batch of events with a constant number of SQL round trips (two), shared by the Lambdas.

One model version end to end: a customer the version's user table holds is searched with their stored vector (what
training learned from their purchases), a customer new since training with the bundle's user tower over the event's
attributes, and every search reads that same version's tables (:func:`recsys_serving.search.version_tables`), never
the live views, so a new model going live in the vector DB mid-stream cannot mix into the answers of a Lambda still
serving the old one. Each answer says which
version computed it. If the vector DB no longer holds the version, the batch fails
(:class:`~recsys_serving.search.ModelVersionUnavailable`; Firehose retries, then routes to ``errors/``).

Cold-start items: an anchor product the version's table does not hold (new since training) is embedded from the
features the event carries by the bundle's item tower, and gets similar items marked ``"cold_start": true``. When
several events of one batch describe the same new product, the first description is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recsys_serving.bundle import InferenceBundle
from recsys_serving.events import UserActivityEvent
from recsys_serving.search import items_from_users_batch, similar_items, version_tables

DEFAULT_K = 5


@dataclass(frozen=True)
class Recommendation:
    event: UserActivityEvent
    recommended: list[tuple[str, float]]
    similar: dict[str, list[tuple[str, float]]]
    model_version: str
    cold_start: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        """The event as it came (session, customer features, browse history) and the answers next to it."""
        return {
            **self.event.to_json(),
            "recommended_items": [{"product_code": c, "score": round(s, 6)} for c, s in self.recommended],
            "similar_items": [
                {
                    "for_product_code": anchor,
                    "cold_start": anchor in self.cold_start,
                    "items": [{"product_code": c, "score": round(s, 6)} for c, s in matches],
                }
                for anchor, matches in self.similar.items()
            ],
            "model_version": self.model_version,
            "generated_at": datetime.now(UTC).isoformat(),
        }


class UnknownProductsError(ValueError):
    pass


class NonFiniteEmbeddingError(ValueError):
    """A schema-valid event whose features give a non-finite embedding (e.g. a credit limit of 1e300)."""


def _cold_vectors(bundle: InferenceBundle, events: list[UserActivityEvent], usable: np.ndarray) -> dict[str, Any]:
    """Item-tower vectors of every anchor, from the first event that describes it (used only if not stored)."""
    described: dict[str, dict[str, Any]] = {}
    for event, ok in zip(events, usable, strict=True):
        if not ok:
            continue
        anchors = set(event.anchor_items())
        for item in event.browse_history:
            if item.product_code in anchors:
                described.setdefault(item.product_code, item.features())
    if not described:
        return {}
    codes = list(described)
    with np.errstate(over="ignore", invalid="ignore"):
        vectors = np.asarray(bundle.item_embeddings([described[c] for c in codes]))
    return {code: vector for code, vector in zip(codes, vectors, strict=True) if np.isfinite(vector).all()}


def recommend(
    conn: Any, bundle: InferenceBundle, events: list[UserActivityEvent], k: int = DEFAULT_K
) -> list[Recommendation | ValueError]:
    """One recommendation (or the reason there is none) per event, in order; deterministic.

    An event the model cannot embed (non-finite vector) fails alone: the batch query runs on the others.
    """
    if not events:
        return []
    items_table, users_table = version_tables(bundle.model_version)
    with np.errstate(over="ignore", invalid="ignore"):  # handled below: such an event fails alone
        user_vectors = np.asarray(bundle.user_embeddings([e.user_features() for e in events]))
    finite = np.isfinite(user_vectors).all(axis=1)
    customers = [e.customer_number for e, ok in zip(events, finite, strict=True) if ok]
    searched = iter(
        items_from_users_batch(conn, user_vectors[finite], k, items_table, customers, users_table)
        if finite.any()
        else []
    )
    anchors = sorted({code for e, ok in zip(events, finite, strict=True) if ok for code in e.anchor_items()})
    for_items = similar_items(conn, anchors, k, items_table, _cold_vectors(bundle, events, finite))
    out: list[Recommendation | ValueError] = []
    for event, ok in zip(events, finite, strict=True):
        if not ok:
            out.append(
                NonFiniteEmbeddingError(
                    f"session {event.session_id}: credit_limit: the event's features give a non-finite user "
                    f"embedding (credit_limit {event.credit_limit!r} is out of the model's range)"
                )
            )
            continue
        recommended = next(searched)
        unknown = [code for code in event.anchor_items() if code not in for_items]
        if unknown:
            out.append(
                UnknownProductsError(
                    f"session {event.session_id}: products {', '.join(unknown)} have no embedding and their "
                    "features give none (non-finite item-tower output)"
                )
            )
            continue
        similar = {code: for_items[code][0] for code in event.anchor_items()}
        cold = frozenset(code for code in event.anchor_items() if for_items[code][1])
        out.append(Recommendation(event, recommended, similar, bundle.model_version, cold))
    return out
