"""A deterministic generator of `classicmodels` data with ratings a model can learn.

The generative story (one seed fixes every number):

1. **Catalog.** Seven product lines (the sample's) and eight scales. Each product gets a line, a scale, a stock level
   (uniform 0-9999), a buy price that grows with the model's size (a 1:10 model costs more than a 1:700 one) and
   with the line, and an MSRP that marks the price up by 40-120%.
2. **Customers.** Countries follow the sample's skew (a third in the USA, then Germany, France, Spain, ...); within a
   country cities follow a Zipf law, so a few cities hold most customers. States exist only where the country uses
   them; about 8% of postal codes are NULL. Credit limits are log-normal, with about 18% exactly 0 (customers who
   never got credit; most of them also never order) and a few NULL.
3. **Purchases.** Customers with credit order; each picks distinct products with probability proportional to
   ``exp(affinity)``, so purchases already lean towards what they like. Purchases are grouped into orders of 1-16
   lines, dated 2003-2005.
4. **Ratings** (:func:`rate`). One rating per purchased (customer, product) pair:
   ``round(3.1 + A[region, line] + B[credit tier, size class] + value(product) + N(0, 0.55))`` clipped to 1..5,
   where ``A`` is a fixed region-by-line affinity table (American customers love Classic Cars, Nordic ones Ships),
   ``B`` makes high-credit customers prefer large-scale, pricey models, and ``value`` rewards a low price relative to
   MSRP. Every term is a function of the features the training data carries, so a model can beat a mean predictor;
   the noise keeps it honest.

Scale with ``--customers``, ``--products`` and ``--ratings`` (for example 100,000 customers, 2,000 products and 10M
ratings); generation is vectorised and processes customers in chunks.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

PRODUCT_LINES: tuple[str, ...] = (
    "Classic Cars",
    "Motorcycles",
    "Planes",
    "Ships",
    "Trains",
    "Trucks and Buses",
    "Vintage Cars",
)
SCALES: tuple[str, ...] = ("1:10", "1:12", "1:18", "1:24", "1:32", "1:50", "1:72", "1:700")
#: Relative size of a model at each scale (drives price); 1:10 is the largest.
SCALE_SIZE = {scale: 10.0 / float(scale.split(":")[1]) for scale in SCALES}

#: country -> (share of customers, region, cities, states or None). Shares follow the public sample's skew.
COUNTRIES: dict[str, tuple[float, str, tuple[str, ...], tuple[str, ...] | None]] = {
    "USA": (
        0.30,
        "americas",
        (
            "NYC",
            "San Francisco",
            "Boston",
            "Philadelphia",
            "Los Angeles",
            "Brickhaven",
            "Cambridge",
            "New Haven",
            "Glendale",
            "Allentown",
            "Burlingame",
            "Las Vegas",
            "White Plains",
            "San Diego",
            "Pasadena",
            "San Jose",
            "Nashua",
            "Bridgewater",
        ),
        ("NY", "CA", "MA", "PA", "CT", "NV", "NH", "NJ"),
    ),
    "Germany": (
        0.11,
        "europe",
        (
            "Frankfurt",
            "Berlin",
            "Köln",
            "München",
            "Stuttgart",
            "Mannheim",
            "Cunewalde",
            "Leipzig",
            "Brandenburg",
            "Aachen",
            "Münster",
        ),
        None,
    ),
    "France": (
        0.10,
        "europe",
        ("Paris", "Nantes", "Lyon", "Marseille", "Strasbourg", "Toulouse", "Lille", "Reims", "Versailles"),
        None,
    ),
    "Spain": (0.06, "europe", ("Madrid", "Barcelona", "Sevilla"), None),
    "Australia": (
        0.045,
        "apac",
        ("Melbourne", "Sydney", "Chatswood", "North Sydney", "Glen Waverly"),
        ("Victoria", "NSW"),
    ),
    "UK": (0.045, "europe", ("London", "Manchester", "Liverpool", "Cowes", "Brickhaven"), None),
    "Italy": (0.035, "europe", ("Torino", "Bergamo", "Reggio Emilia", "Milan"), None),
    "New Zealand": (0.035, "apac", ("Auckland", "Wellington", "Auckland  "), None),
    "Canada": (0.025, "americas", ("Vancouver", "Montréal", "Tsawassen", "Toronto"), ("BC", "Québec", "ON")),
    "Finland": (0.025, "nordic", ("Helsinki", "Espoo", "Oulu"), None),
    "Switzerland": (0.025, "europe", ("Bern", "Genève", "Zürich"), None),
    "Singapore": (0.025, "apac", ("Singapore",), None),
    "Denmark": (0.02, "nordic", ("Kobenhavn", "Århus"), None),
    "Japan": (0.02, "apac", ("Tokyo", "Osaka", "Kita-ku"), ("Tokyo", "Osaka")),
    "Norway": (0.025, "nordic", ("Stavern", "Bergen", "Oslo"), None),
    "Sweden": (0.02, "nordic", ("Luleå", "Göteborg", "Bräcke"), None),
    "Ireland": (0.015, "europe", ("Dublin",), None),
    "Austria": (0.015, "europe", ("Graz", "Salzburg"), None),
    "Belgium": (0.015, "europe", ("Bruxelles", "Charleroi"), None),
    "Philippines": (0.01, "apac", ("Makati City",), None),
    "Hong Kong": (0.01, "apac", ("Central Hong Kong",), None),
    "Portugal": (0.01, "europe", ("Lisboa",), None),
    "Poland": (0.01, "europe", ("Warszawa",), None),
    "Russia": (0.01, "other", ("Saint Petersburg", "Moscow"), None),
    "South Africa": (0.01, "other", ("Johannesburg",), None),
    "Israel": (0.01, "other", ("Herzlia",), None),
    "Netherlands": (0.01, "europe", ("Amsterdam",), None),
}
REGIONS: tuple[str, ...] = ("americas", "europe", "nordic", "apac", "other")

#: A[region][line]: how much a region's customers like a product line (rating points).
LINE_AFFINITY = np.array(
    [
        # Classic, Motorcycles, Planes, Ships, Trains, Trucks, Vintage
        [0.9, 0.5, -0.2, -0.6, -0.4, 0.3, -0.3],  # americas
        [-0.2, 0.2, 0.1, -0.1, 0.6, -0.3, 0.8],  # europe
        [-0.5, -0.3, 0.4, 1.0, 0.3, 0.0, -0.1],  # nordic
        [0.2, 0.8, 0.6, 0.2, -0.5, -0.2, -0.4],  # apac
        [0.0, 0.0, 0.3, 0.3, 0.0, 0.5, 0.0],  # other
    ]
)
#: B[credit tier][size class]: credit tiers none / standard / high; size classes large (1:10-1:18) / small.
SIZE_AFFINITY = np.array([[-0.5, 0.3], [0.0, 0.0], [0.6, -0.4]])
#: Price per line relative to Classic Cars.
LINE_PRICE = {
    "Classic Cars": 1.0,
    "Motorcycles": 0.7,
    "Planes": 0.75,
    "Ships": 0.65,
    "Trains": 0.55,
    "Trucks and Buses": 0.8,
    "Vintage Cars": 0.85,
}
NOISE_SD = 0.55

LAST_NAMES = (
    "Schmitt",
    "King",
    "Ferguson",
    "Labrune",
    "Bergulfsen",
    "Nelson",
    "Piestrzeniewicz",
    "Keitel",
    "Murphy",
    "Lee",
    "Freyre",
    "Berglund",
    "Petersen",
    "Saveley",
    "Natividad",
    "Young",
    "Leong",
    "Hashimoto",
    "Wang",
    "Brown",
    "Kloss",
    "Ibsen",
    "Camino",
    "Citeaux",
    "Gao",
    "Moroni",
    "Pfalzheim",
)
FIRST_NAMES = (
    "Carine",
    "Jean",
    "Peter",
    "Janine",
    "Jonas",
    "Susan",
    "Zbyszek",
    "Roland",
    "Julie",
    "Kwai",
    "Diego",
    "Christina",
    "Jytte",
    "Mary",
    "Eric",
    "Jeff",
    "Kelvin",
    "Juri",
    "Wing",
    "Ann",
    "Henriette",
)
NAME_WORDS = (
    "Atelier",
    "Signal",
    "Australian",
    "La Rochelle",
    "Baane",
    "Mini",
    "Havel",
    "Blauer",
    "Euro",
    "Volvo",
    "Danish",
    "Dragon",
    "Muscle",
    "Diecast",
    "Corporate",
    "Technics",
    "Herkku",
    "Toys",
    "Gifts",
    "Classics",
    "Replicas",
    "Collectables",
    "Imports",
    "Models",
    "Souveniers",
    "Auto",
)
SUFFIXES = ("Co.", "Ltd.", "Inc.", "Gifts", "Imports", "& Co", "Corp.", "Store", "Shopping Channel")
STATUSES = ("Shipped",) * 44 + ("Cancelled", "Resolved", "On Hold", "In Process", "Disputed", "Resolved")


@dataclass(frozen=True)
class SeedSpec:
    """How much data to make. Defaults resemble the public sample database."""

    customers: int = 122
    products: int = 110
    ratings: int = 2600
    seed: int = 42
    chunk_customers: int = 5000

    def validate(self) -> None:
        if self.customers < 1 or self.products < 1 or self.ratings < 1:
            raise ValueError("customers, products and ratings must be positive")
        per_customer = self.ratings / (self.customers * 0.8)
        if per_customer > self.products * 0.6:
            raise ValueError(
                f"{self.ratings} ratings over {self.customers} customers means ~{per_customer:.0f} distinct products "
                f"per ordering customer, more than 60% of the {self.products} products: raise --products"
            )


def region_of(countries: pd.Series) -> np.ndarray:
    """Index into :data:`REGIONS` for each country; unknown countries fall in "other"."""
    lookup = {country: REGIONS.index(info[1]) for country, info in COUNTRIES.items()}
    return countries.map(lambda c: lookup.get(str(c).strip(), REGIONS.index("other"))).to_numpy(dtype=int)


def credit_tier(credit: pd.Series) -> np.ndarray:
    values = pd.to_numeric(credit, errors="coerce").fillna(0.0).to_numpy(dtype=float)
    return np.where(values <= 0, 0, np.where(values < 90_000, 1, 2))


def size_class(scales: pd.Series) -> np.ndarray:
    """0 for large models (1:10 to 1:18), 1 for smaller ones."""
    denominators = scales.astype(str).str.split(":").str[-1]
    return (pd.to_numeric(denominators, errors="coerce").fillna(24) > 18).to_numpy(dtype=int)


def line_index(lines: pd.Series) -> np.ndarray:
    lookup = {line: i for i, line in enumerate(PRODUCT_LINES)}
    # A line not in the sample gets a stable pseudo-random column of the affinity table.
    return lines.map(lambda x: lookup.get(x, zlib.crc32(str(x).encode()) % len(PRODUCT_LINES))).to_numpy(dtype=int)


def product_terms(products: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line index, size class, value term) per product."""
    buy = pd.to_numeric(products["buyPrice"], errors="coerce").to_numpy(dtype=float)
    msrp = pd.to_numeric(products["MSRP"], errors="coerce").to_numpy(dtype=float)
    markup = np.divide(msrp, buy, out=np.full_like(msrp, 1.8), where=buy > 0)
    value = np.clip(0.9 * (markup - 1.8), -0.6, 0.6)
    return line_index(products["productLine"]), size_class(products["productScale"]), value


def customer_terms(customers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(region index, credit tier) per customer."""
    return region_of(customers["country"]), credit_tier(customers["creditLimit"])


def expected_rating(customers: pd.DataFrame, products: pd.DataFrame) -> np.ndarray:
    """The noise-free rating of aligned rows of customer and product features (see the module docstring)."""
    region, tier = customer_terms(customers)
    line, size, value = product_terms(products)
    return 3.1 + LINE_AFFINITY[region, line] + SIZE_AFFINITY[tier, size] + value


def expected_rating_matrix(customers: pd.DataFrame, products: pd.DataFrame) -> np.ndarray:
    """The same as :func:`expected_rating` for every customer x product (shape customers x products)."""
    region, tier = customer_terms(customers)
    line, size, value = product_terms(products)
    return (
        3.1
        + LINE_AFFINITY[region[:, None], line[None, :]]
        + SIZE_AFFINITY[tier[:, None], size[None, :]]
        + value[None, :]
    )


def rate(customers: pd.DataFrame, products: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Ratings 1..5 for aligned rows of customer and product features."""
    noisy = expected_rating(customers, products) + rng.normal(0.0, NOISE_SD, size=len(customers))
    return np.clip(np.rint(noisy), 1, 5).astype(int)


def derive_ratings(pairs: pd.DataFrame, customers: pd.DataFrame, products: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Ratings for purchased pairs of an existing database (``customerNumber, productCode``), lab style."""
    pairs = pairs.drop_duplicates().sort_values(["customerNumber", "productCode"]).reset_index(drop=True)
    c = customers.set_index("customerNumber").loc[pairs["customerNumber"]].reset_index()
    p = products.set_index("productCode").loc[pairs["productCode"]].reset_index()
    rng = np.random.default_rng(seed)
    return pairs.assign(productRating=rate(c, p, rng))


# --- generation ---------------------------------------------------------------------------------------------------


def make_catalog(spec: SeedSpec, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    lines = pd.DataFrame(
        {
            "productLine": PRODUCT_LINES,
            "textDescription": [f"Detailed scale replicas: {line.lower()} for collectors." for line in PRODUCT_LINES],
            "htmlDescription": None,
            "image": None,
        }
    )
    n = spec.products
    line = rng.choice(len(PRODUCT_LINES), size=n, p=[0.35, 0.12, 0.11, 0.08, 0.03, 0.1, 0.21])
    scale = rng.choice(len(SCALES), size=n, p=[0.06, 0.08, 0.38, 0.22, 0.08, 0.06, 0.06, 0.06])
    size = np.array([SCALE_SIZE[SCALES[s]] for s in scale])
    line_price = np.array([LINE_PRICE[PRODUCT_LINES[i]] for i in line])
    buy = np.round(np.clip(18 + 75 * size**0.6 * line_price * rng.lognormal(0, 0.25, n), 15, 120), 2)
    msrp = np.round(buy * rng.uniform(1.4, 2.2, n), 2)
    serial = rng.choice(np.arange(1000, 10000), size=n, replace=n > 9000)
    codes = [f"S{SCALES[s].split(':')[1][:2]}_{serial[i]}" for i, s in enumerate(scale)]
    codes = _dedupe(codes)
    vendors = (
        "Min Lin Diecast",
        "Classic Metal Creations",
        "Highway 66 Mini Classics",
        "Red Start Diecast",
        "Motor City Art Classics",
        "Second Gear Diecast",
        "Autoart Studio Design",
        "Welly Diecast Productions",
        "Unimax Art Galleries",
        "Studio M Art Models",
        "Exoto Designs",
        "Gearbox Collectibles",
        "Carousel DieCast Legends",
    )
    products = pd.DataFrame(
        {
            "productCode": codes,
            "productName": [
                f"{1950 + (serial[i] % 55)} {PRODUCT_LINES[line[i]].rstrip('s')} #{i + 1}" for i in range(n)
            ],
            "productLine": [PRODUCT_LINES[i] for i in line],
            "productScale": [SCALES[s] for s in scale],
            "productVendor": [vendors[i] for i in rng.integers(0, len(vendors), n)],
            "productDescription": "Hand-painted die-cast replica with opening doors and detailed interior.",
            "quantityInStock": rng.integers(0, 10000, n),
            "buyPrice": buy,
            "MSRP": msrp,
        }
    )
    return {"productlines": lines, "products": products}


def _dedupe(codes: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for code in codes:
        count = seen.get(code, 0)
        seen[code] = count + 1
        out.append(code if count == 0 else f"{code}{chr(ord('A') + (count - 1) % 26)}{(count - 1) // 26 or ''}")
    return out


def make_staff() -> dict[str, pd.DataFrame]:
    offices = pd.DataFrame(
        [
            ("1", "San Francisco", "+1 650 219 4782", "100 Market Street", "Suite 300", "CA", "USA", "94080", "NA"),
            ("2", "Boston", "+1 215 837 0825", "1550 Court Place", "Suite 102", "MA", "USA", "02107", "NA"),
            ("3", "NYC", "+1 212 555 3000", "523 East 53rd Street", "apt. 5A", "NY", "USA", "10022", "NA"),
            ("4", "Paris", "+33 14 723 4404", "43 Rue Jouffroy D'abbans", None, None, "France", "75017", "EMEA"),
            ("5", "Tokyo", "+81 33 224 5000", "4-1 Kioicho", None, "Chiyoda-Ku", "Japan", "102-8578", "Japan"),
            (
                "6",
                "Sydney",
                "+61 2 9264 2451",
                "5-11 Wentworth Avenue",
                "Floor #2",
                None,
                "Australia",
                "NSW 2010",
                "APAC",
            ),
            ("7", "London", "+44 20 7877 2041", "25 Old Broad Street", "Level 7", None, "UK", "EC2N 1HN", "EMEA"),
        ],
        columns=[
            "officeCode",
            "city",
            "phone",
            "addressLine1",
            "addressLine2",
            "state",
            "country",
            "postalCode",
            "territory",
        ],
    )
    rows = [
        (1002, "Murphy", "Diane", "x5800", "1", None, "President"),
        (1056, "Patterson", "Mary", "x4611", "1", 1002, "VP Sales"),
        (1076, "Firrelli", "Jeff", "x9273", "1", 1002, "VP Marketing"),
    ]
    reps_by_office = {"1": 2, "2": 2, "3": 2, "4": 5, "5": 2, "6": 4, "7": 3}
    number = 1100
    for office, count in reps_by_office.items():
        for i in range(count):
            number += 11
            rows.append(
                (
                    number,
                    LAST_NAMES[number % len(LAST_NAMES)],
                    FIRST_NAMES[number % len(FIRST_NAMES)],
                    f"x{1000 + number % 9000}",
                    office,
                    1056,
                    "Sales Rep" if i else "Sales Manager",
                )
            )
    employees = pd.DataFrame(
        rows, columns=["employeeNumber", "lastName", "firstName", "extension", "officeCode", "reportsTo", "jobTitle"]
    )
    employees.insert(
        4,
        "email",
        [
            f"{f[0].lower()}{ln.lower()}@classicmodelcars.com"
            for f, ln in zip(employees.firstName, employees.lastName, strict=True)
        ],
    )
    return {"offices": offices, "employees": employees}


def make_customers(spec: SeedSpec, employees: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    n = spec.customers
    names = list(COUNTRIES)
    shares = np.array([COUNTRIES[c][0] for c in names])
    country_idx = rng.choice(len(names), size=n, p=shares / shares.sum())
    cities, states, postal = [], [], []
    for ci in country_idx:
        _, _, city_list, state_list = COUNTRIES[names[ci]]
        zipf = 1.0 / np.arange(1, len(city_list) + 1) ** 1.1
        city_i = rng.choice(len(city_list), p=zipf / zipf.sum())
        cities.append(city_list[city_i].strip())
        states.append(None if state_list is None else state_list[city_i % len(state_list)])
        postal.append(None if rng.random() < 0.08 else f"{rng.integers(1000, 99999):05d}")
    credit = np.round(rng.lognormal(np.log(85_000), 0.45, n), -2)
    no_credit = rng.random(n) < 0.18
    credit[no_credit] = 0.0
    credit_values: list[float | None] = [None if rng.random() < 0.01 else float(v) for v in credit]
    reps = employees.loc[employees.jobTitle.str.startswith("Sales"), "employeeNumber"].to_numpy()
    rep = [None if no_credit[i] else int(reps[rng.integers(0, len(reps))]) for i in range(n)]
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    words = rng.integers(0, len(NAME_WORDS), (n, 2))
    suffix = rng.integers(0, len(SUFFIXES), n)
    return pd.DataFrame(
        {
            "customerNumber": 103 + np.arange(n) * 3 + rng.integers(0, 3, n),
            "customerName": [
                f"{NAME_WORDS[a]} {NAME_WORDS[b]} {SUFFIXES[s]}"[:50] for (a, b), s in zip(words, suffix, strict=True)
            ],
            "contactLastName": [LAST_NAMES[i] for i in last],
            "contactFirstName": [FIRST_NAMES[i] for i in first],
            "phone": [f"+{rng.integers(1, 99)} {rng.integers(100, 999)} {rng.integers(1000, 9999)}" for _ in range(n)],
            "addressLine1": [f"{rng.integers(1, 9999)} {NAME_WORDS[i % len(NAME_WORDS)]} St." for i in range(n)],
            "addressLine2": [None if rng.random() < 0.85 else f"Level {rng.integers(1, 20)}" for _ in range(n)],
            "city": cities,
            "state": states,
            "postalCode": postal,
            "country": [names[i] for i in country_idx],
            "salesRepEmployeeNumber": pd.array(rep, dtype="Int64"),
            "creditLimit": credit_values,
        }
    )


def purchases(
    spec: SeedSpec, customers: pd.DataFrame, products: pd.DataFrame, rng: np.random.Generator
) -> Iterator[pd.DataFrame]:
    """Distinct (customerNumber, productCode) pairs, chunk by chunk, leaning towards each customer's affinity."""
    credit = pd.to_numeric(customers["creditLimit"], errors="coerce").fillna(0).to_numpy()
    # Customers without credit rarely order (the sample has 24 such customers and no orders from them).
    ordering = (credit > 0) | (rng.random(len(customers)) < 0.05)
    buyers = customers[ordering].reset_index(drop=True)
    mean_k = spec.ratings / max(len(buyers), 1)
    k = np.clip(rng.poisson(mean_k, len(buyers)), 1, len(products))
    n_products = len(products)
    for start in range(0, len(buyers), spec.chunk_customers):
        chunk = buyers.iloc[start : start + spec.chunk_customers]
        kc = k[start : start + len(chunk)]
        # expected rating of every (customer, product) in the chunk: purchases lean towards liked products
        scores = expected_rating_matrix(chunk, products)
        gumbel = rng.gumbel(size=scores.shape)
        keys = 0.8 * scores + gumbel  # Gumbel-top-k: weighted sampling without replacement
        k_max = int(kc.max())
        top = np.argpartition(-keys, kth=min(k_max, n_products - 1), axis=1)[:, :k_max]
        order = np.take_along_axis(keys, top, axis=1).argsort(axis=1)[:, ::-1]
        top = np.take_along_axis(top, order, axis=1)
        mask = np.arange(k_max)[None, :] < kc[:, None]
        rows = np.repeat(np.arange(len(chunk)), mask.sum(axis=1))
        yield pd.DataFrame(
            {
                "customerNumber": chunk["customerNumber"].to_numpy()[rows],
                "productCode": products["productCode"].to_numpy()[top[mask]],
            }
        )


def orders_for(
    pairs: pd.DataFrame, products: pd.DataFrame, first_order: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Group purchased pairs into orders; return (orders, orderdetails, payments)."""
    n = len(pairs)
    new_customer = np.r_[True, pairs["customerNumber"].to_numpy()[1:] != pairs["customerNumber"].to_numpy()[:-1]]
    size = rng.integers(1, 17, n)  # a new order starts every few lines
    boundary = new_customer | (rng.random(n) < 1.0 / size)
    order_no = first_order + np.cumsum(boundary) - 1
    starts = np.flatnonzero(boundary)
    line_no = np.arange(n) - np.maximum.accumulate(np.where(boundary, np.arange(n), 0)) + 1
    n_orders = len(starts)
    base = np.datetime64("2003-01-06")
    order_date = base + rng.integers(0, 876, n_orders).astype("timedelta64[D]")
    status = np.array(STATUSES)[rng.integers(0, len(STATUSES), n_orders)]
    shipped = order_date + rng.integers(1, 7, n_orders).astype("timedelta64[D]")
    orders = pd.DataFrame(
        {
            "orderNumber": order_no[starts],
            "orderDate": order_date,
            "requiredDate": order_date + rng.integers(7, 11, n_orders).astype("timedelta64[D]"),
            "shippedDate": pd.Series(shipped).where(status != "In Process").where(status != "On Hold"),
            "status": status,
            "comments": None,
            "customerNumber": pairs["customerNumber"].to_numpy()[starts],
        }
    )
    msrp = products.set_index("productCode")["MSRP"].reindex(pairs["productCode"]).to_numpy(dtype=float)
    details = pd.DataFrame(
        {
            "orderNumber": order_no,
            "productCode": pairs["productCode"].to_numpy(),
            "quantityOrdered": rng.integers(20, 67, n),
            "priceEach": np.round(msrp * rng.uniform(0.8, 1.0, n), 2),
            "orderLineNumber": line_no,
        }
    )
    totals = (details.quantityOrdered * details.priceEach).groupby(pairs["customerNumber"].to_numpy()).sum()
    payments = pd.DataFrame(
        {
            "customerNumber": totals.index.to_numpy(),
            "checkNumber": [
                f"{chr(65 + int(c) % 26)}{chr(65 + int(c) // 26 % 26)}{100000 + int(c) % 900000}" for c in totals.index
            ],
            "paymentDate": base + rng.integers(30, 900, len(totals)).astype("timedelta64[D]"),
            "amount": np.round(totals.to_numpy(), 2),
        }
    )
    return orders, details, payments


def generate(spec: SeedSpec, progress: Callable[[str], None] | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield ``(table, rows)`` in load order; large tables come in several chunks."""
    spec.validate()
    say = progress or (lambda _m: None)
    rng = np.random.default_rng(spec.seed)
    catalog = make_catalog(spec, rng)
    staff = make_staff()
    customers = make_customers(spec, staff["employees"], rng)
    yield from (*catalog.items(), *staff.items(), ("customers", customers))
    first_order = 10100
    made = 0
    for pairs in purchases(spec, customers, catalog["products"], rng):
        orders, details, payments = orders_for(pairs, catalog["products"], first_order, rng)
        first_order = int(orders.orderNumber.max()) + 1
        c = customers.set_index("customerNumber").loc[pairs["customerNumber"]].reset_index()
        p = catalog["products"].set_index("productCode").loc[pairs["productCode"]].reset_index()
        ratings = pairs.assign(productRating=rate(c, p, rng))
        yield "payments", payments
        yield "orders", orders
        yield "orderdetails", details
        yield "ratings", ratings
        made += len(ratings)
        say(f"generated {made:,} ratings (~{min(100, 100 * made // max(spec.ratings, 1))}%)")
