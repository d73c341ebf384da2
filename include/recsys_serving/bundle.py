"""The model's inference bundle: numpy weights (`.npz`) plus encoders and scalers as JSON. No torch, no pickle.

The streaming Lambdas load this at cold start (torch is ~750 MB and a zip Lambda holds 250 MB; unpickling from a
bucket would execute code). :func:`user_embeddings` / :func:`item_embeddings` reproduce the torch towers exactly
(tests check agreement within 1e-5). The towers embed customers and products new since training; a known one's
vector is the version's stored row (it adds what training learned from its purchases).

Feature handling (the same as training, see :mod:`recsys.model.features`): categorical values are stripped strings,
NULL becomes ``"__missing__"``, unknown categories encode to all zeros (scikit-learn's ``handle_unknown="ignore"``);
numeric NULLs become the training median before standardisation.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

MISSING = "__missing__"
USER_CATEGORICAL = ("city", "country")
USER_NUMERIC = ("creditLimit",)
ITEM_CATEGORICAL = ("productLine", "productScale")
ITEM_NUMERIC = ("quantityInStock", "buyPrice", "MSRP")


@dataclass(frozen=True)
class Encoder:
    """One-hot categories and standard scaling for one tower, as plain lists."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    medians: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]

    @property
    def width(self) -> int:
        return sum(len(c) for c in self.categories) + len(self.numeric)

    def encode(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """Feature matrix for rows of raw features (dicts keyed by column name)."""
        out = np.zeros((len(rows), self.width), dtype=np.float32)
        offset = 0
        for column, categories in zip(self.categorical, self.categories, strict=True):
            index = {value: i for i, value in enumerate(categories)}
            for r, row in enumerate(rows):
                position = index.get(normalise_category(row.get(column)))
                if position is not None:
                    out[r, offset + position] = 1.0
            offset += len(categories)
        for j, column in enumerate(self.numeric):
            for r, row in enumerate(rows):
                value = to_float(row.get(column))
                value = self.medians[j] if value is None else value
                out[r, offset + j] = (value - self.means[j]) / self.scales[j]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "categorical": list(self.categorical),
            "numeric": list(self.numeric),
            "categories": [list(c) for c in self.categories],
            "medians": list(self.medians),
            "means": list(self.means),
            "scales": list(self.scales),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Encoder:
        return cls(
            tuple(data["categorical"]),
            tuple(data["numeric"]),
            tuple(tuple(c) for c in data["categories"]),
            tuple(float(x) for x in data["medians"]),
            tuple(float(x) for x in data["means"]),
            tuple(float(x) for x in data["scales"]),
        )


def normalise_category(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return MISSING
    text = str(value).strip()
    return text or MISSING


def to_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


@dataclass(frozen=True)
class InferenceBundle:
    model_version: str
    #: format 1's field from the rating model; the ranker writes 0.0 and nothing reads it
    global_mean: float
    user_encoder: Encoder
    item_encoder: Encoder
    #: tower name -> list of (weight, bias) for Linear layers; ReLU between them, none after the last.
    layers: dict[str, list[tuple[np.ndarray, np.ndarray]]]

    def _tower(self, name: str, x: np.ndarray) -> np.ndarray:
        h = x.astype(np.float64)
        stack = self.layers[name]
        for i, (weight, bias) in enumerate(stack):
            h = h @ weight.T.astype(np.float64) + bias.astype(np.float64)
            if i < len(stack) - 1:
                h = np.maximum(h, 0.0)
        return h.astype(np.float32)

    def user_embeddings(self, rows: list[dict[str, Any]]) -> np.ndarray:
        return self._tower("user", self.user_encoder.encode(rows))

    def item_embeddings(self, rows: list[dict[str, Any]]) -> np.ndarray:
        return self._tower("item", self.item_encoder.encode(rows))

    # --- serialisation --------------------------------------------------------------------------------------------
    def to_files(self) -> tuple[bytes, bytes]:
        """(npz bytes, json bytes)."""
        arrays = {
            f"{tower}.{i}.{part}": array
            for tower, stack in self.layers.items()
            for i, (weight, bias) in enumerate(stack)
            for part, array in (("weight", weight), ("bias", bias))
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        meta = {
            "format": 1,
            "model_version": self.model_version,
            "global_mean": self.global_mean,
            "user_encoder": self.user_encoder.to_json(),
            "item_encoder": self.item_encoder.to_json(),
            "layers": {tower: len(stack) for tower, stack in self.layers.items()},
        }
        return buffer.getvalue(), json.dumps(meta).encode()

    @classmethod
    def from_files(cls, npz: bytes, meta_json: bytes) -> InferenceBundle:
        meta = json.loads(meta_json)
        if meta.get("format") != 1:
            raise ValueError(f"unsupported inference bundle format {meta.get('format')!r}")
        with np.load(io.BytesIO(npz), allow_pickle=False) as arrays:
            layers = {
                tower: [(arrays[f"{tower}.{i}.weight"], arrays[f"{tower}.{i}.bias"]) for i in range(count)]
                for tower, count in meta["layers"].items()
            }
        return cls(
            model_version=meta["model_version"],
            global_mean=float(meta["global_mean"]),
            user_encoder=Encoder.from_json(meta["user_encoder"]),
            item_encoder=Encoder.from_json(meta["item_encoder"]),
            layers=layers,
        )


def vector_literal(values: np.ndarray) -> str:
    """The pgvector text form ``[v1,...,vn]`` (float32 round-trip precision)."""
    return "[" + ",".join(repr(float(v)) for v in np.asarray(values, dtype=np.float32)) + "]"
