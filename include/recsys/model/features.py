"""Feature preprocessing with scikit-learn: the pickled scalers of the lab's layout, and their JSON twins.

User tower: one-hot ``city``, ``country`` + standardised ``creditLimit``. Item tower: one-hot ``productLine``,
``productScale`` + standardised ``quantityInStock``, ``buyPrice``, ``MSRP``. NULLs are explicit: a NULL category is
its own value ``"__missing__"``; a NULL number takes the training median. Unknown categories encode to zeros
(``handle_unknown="ignore"``), so an unseen city still gets an embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from recsys_serving.bundle import (
    ITEM_CATEGORICAL,
    ITEM_NUMERIC,
    USER_CATEGORICAL,
    USER_NUMERIC,
    Encoder,
    normalise_category,
)


@dataclass
class TowerFeatures:
    """A fitted one-hot encoder and scaler for one tower."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    ohe: OneHotEncoder
    scaler: StandardScaler
    medians: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, categorical: tuple[str, ...], numeric: tuple[str, ...]) -> TowerFeatures:
        cats = frame[list(categorical)].map(normalise_category)
        nums = frame[list(numeric)].apply(pd.to_numeric, errors="coerce").astype(float)
        medians = nums.median().fillna(0.0).to_numpy()
        ohe = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32).fit(cats)
        scaler = StandardScaler().fit(nums.fillna(dict(zip(numeric, medians, strict=True))))
        return cls(categorical, numeric, ohe, scaler, medians)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        cats = frame[list(self.categorical)].map(normalise_category)
        nums = frame[list(self.numeric)].apply(pd.to_numeric, errors="coerce").astype(float)
        nums = nums.fillna(dict(zip(self.numeric, self.medians, strict=True)))
        return np.hstack([self.ohe.transform(cats), self.scaler.transform(nums)]).astype(np.float32)

    def to_encoder(self) -> Encoder:
        """The same preprocessing as plain lists (for the torch- and pickle-free inference bundle)."""
        return Encoder(
            categorical=self.categorical,
            numeric=self.numeric,
            categories=tuple(tuple(str(v) for v in c) for c in self.ohe.categories_),
            medians=tuple(float(m) for m in self.medians),
            means=tuple(float(m) for m in self.scaler.mean_),
            scales=tuple(float(s) for s in self.scaler.scale_),
        )


def fit_user_features(frame: pd.DataFrame) -> TowerFeatures:
    return TowerFeatures.fit(frame, USER_CATEGORICAL, USER_NUMERIC)


def fit_item_features(frame: pd.DataFrame) -> TowerFeatures:
    return TowerFeatures.fit(frame, ITEM_CATEGORICAL, ITEM_NUMERIC)
