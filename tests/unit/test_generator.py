import numpy as np
import pandas as pd
import pytest

from recsys_local.seed.generator import SeedSpec, derive_ratings, generate


def collect(spec: SeedSpec) -> dict[str, pd.DataFrame]:
    tables: dict[str, list[pd.DataFrame]] = {}
    for table, frame in generate(spec):
        tables.setdefault(table, []).append(frame)
    return {table: pd.concat(frames, ignore_index=True) for table, frames in tables.items()}


@pytest.fixture(scope="module")
def default_data() -> dict[str, pd.DataFrame]:
    return collect(SeedSpec())


def test_same_seed_same_data_other_seed_other_data(default_data):
    again = collect(SeedSpec())
    other = collect(SeedSpec(seed=7))
    pd.testing.assert_frame_equal(default_data["ratings"], again["ratings"])
    pd.testing.assert_frame_equal(default_data["customers"], again["customers"])
    assert not default_data["ratings"].equals(other["ratings"])


def test_default_size_resembles_the_sample(default_data):
    assert len(default_data["customers"]) == 122
    assert len(default_data["products"]) == 110
    assert len(default_data["ratings"]) >= 2000
    assert default_data["ratings"]["productRating"].between(1, 5).all()


def test_every_rating_is_on_a_purchased_pair_and_unique(default_data):
    orders, details, ratings = default_data["orders"], default_data["orderdetails"], default_data["ratings"]
    bought = details.merge(orders[["orderNumber", "customerNumber"]], on="orderNumber")
    bought_pairs = set(zip(bought.customerNumber, bought.productCode, strict=True))
    rated_pairs = list(zip(ratings.customerNumber, ratings.productCode, strict=True))
    assert len(rated_pairs) == len(set(rated_pairs))
    assert set(rated_pairs) <= bought_pairs
    assert set(rated_pairs) == bought_pairs


def test_keys_are_unique_and_foreign_keys_resolve(default_data):
    d = default_data
    assert d["customers"].customerNumber.is_unique
    assert d["products"].productCode.is_unique
    assert d["orders"].orderNumber.is_unique
    assert set(d["orders"].customerNumber) <= set(d["customers"].customerNumber)
    assert set(d["products"].productLine) <= set(d["productlines"].productLine)
    reps = d["customers"].salesRepEmployeeNumber.dropna()
    assert set(reps.astype(int)) <= set(d["employees"].employeeNumber)


def test_customers_are_skewed_with_nulls_and_zero_credit(default_data):
    customers = default_data["customers"]
    counts = customers.country.value_counts()
    assert counts.index[0] == "USA"
    assert counts.iloc[0] >= 3 * counts.iloc[3]
    assert customers.state.isna().any()
    assert customers.state.notna().any()
    assert customers.postalCode.isna().any()
    credit = pd.to_numeric(customers.creditLimit)
    assert (credit == 0).sum() >= 10
    top_city_share = customers.groupby("country").city.agg(lambda c: c.value_counts().iloc[0] / len(c))
    assert top_city_share["USA"] > 1 / customers[customers.country == "USA"].city.nunique()


def test_ratings_carry_a_signal_a_model_can_learn():
    """A plain linear model on the training-data features beats the mean predictor on held-out pairs."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import OneHotEncoder

    data = collect(SeedSpec(customers=600, products=150, ratings=15000, seed=3))
    frame = data["ratings"].merge(data["customers"], on="customerNumber").merge(data["products"], on="productCode")
    credit = pd.to_numeric(frame.creditLimit).fillna(0)
    tier = np.where(credit <= 0, "none", np.where(credit < 90000, "std", "high"))
    features = pd.DataFrame(
        {
            "country_line": frame.country + "|" + frame.productLine,
            "tier_scale": tier + "|" + frame.productScale,
        }
    )
    encoded = OneHotEncoder(handle_unknown="ignore").fit(features)
    x = np.hstack([encoded.transform(features).toarray(), (frame.MSRP / frame.buyPrice).to_numpy()[:, None]])
    y = frame.productRating.to_numpy(dtype=float)
    rng = np.random.default_rng(0)
    test = rng.random(len(y)) < 0.25
    model = Ridge(alpha=1.0).fit(x[~test], y[~test])
    rmse_model = np.sqrt(np.mean((model.predict(x[test]) - y[test]) ** 2))
    rmse_mean = np.sqrt(np.mean((y[~test].mean() - y[test]) ** 2))
    assert rmse_model < 0.85 * rmse_mean, (rmse_model, rmse_mean)


def test_too_many_ratings_for_the_catalog_is_refused():
    with pytest.raises(ValueError, match="raise --products"):
        SeedSpec(customers=10, products=20, ratings=1000).validate()


def test_derived_ratings_one_per_pair_and_deterministic(default_data):
    d = default_data
    bought = d["orderdetails"].merge(d["orders"][["orderNumber", "customerNumber"]], on="orderNumber")
    pairs = pd.concat([bought[["customerNumber", "productCode"]]] * 2)  # duplicates must collapse
    first = derive_ratings(pairs, d["customers"], d["products"], seed=1)
    second = derive_ratings(pairs.sample(frac=1, random_state=5), d["customers"], d["products"], seed=1)
    assert len(first) == len(bought[["customerNumber", "productCode"]].drop_duplicates())
    pd.testing.assert_frame_equal(first, second)
    assert first.productRating.between(1, 5).all()
