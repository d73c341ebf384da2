"""Seeding the real MariaDB source: schema, counts, data contract, and loading a classicmodels dump."""

from __future__ import annotations

import subprocess

import pytest

from recsys_local import mariadb
from recsys_local.process import StackError
from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import load_sql_dump, seed, table_counts
from recsys_local.seed.schema import TABLES

pytestmark = pytest.mark.integration

EXPECTED_TYPES = {
    ("customers", "city"): ("varchar(50)", "NO"),
    ("customers", "state"): ("varchar(50)", "YES"),
    ("customers", "postalCode"): ("varchar(15)", "YES"),
    ("customers", "creditLimit"): ("decimal(10,2)", "YES"),
    ("products", "productScale"): ("varchar(10)", "NO"),
    ("products", "quantityInStock"): ("smallint(6)", "NO"),
    ("products", "buyPrice"): ("decimal(10,2)", "NO"),
    ("products", "MSRP"): ("decimal(10,2)", "NO"),
    ("ratings", "productRating"): ("int(11)", "NO"),
}


def query(cfg, sql):
    with mariadb.connect(cfg) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.fixture(scope="module")
def seeded(stack):
    cfg = stack.mariadb()
    counts = seed(cfg, SeedSpec())
    return cfg, counts


def test_tables_and_column_types_match_the_sample(seeded):
    cfg, counts = seeded
    assert set(counts) == {
        "productlines",
        "products",
        "offices",
        "employees",
        "customers",
        "orders",
        "orderdetails",
        "payments",
        "ratings",
    }
    rows = query(
        cfg,
        "SELECT table_name, column_name, column_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = DATABASE()",
    )
    types = {(t, c): (ty, n) for t, c, ty, n in rows}
    for key, expected in EXPECTED_TYPES.items():
        assert types[key] == expected, key


def test_ratings_are_valid_and_on_purchased_pairs(seeded):
    cfg, counts = seeded
    assert counts["ratings"] >= 2000
    assert query(cfg, "SELECT MIN(productRating), MAX(productRating) FROM ratings")[0] == (1, 5)
    (orphans,) = query(
        cfg,
        "SELECT COUNT(*) FROM ratings r WHERE NOT EXISTS (SELECT 1 FROM orders o JOIN orderdetails d "
        "ON d.orderNumber = o.orderNumber WHERE o.customerNumber = r.customerNumber AND d.productCode = r.productCode)",
    )[0]
    assert orphans == 0


def test_reseeding_replaces_rather_than_appends(seeded):
    cfg, counts = seeded
    again = seed(cfg, SeedSpec())
    assert again == counts


def test_a_dump_without_ratings_loads_and_gets_derived_ratings(stack, seeded, tmp_path):
    cfg, counts = seeded
    dump = tmp_path / "classicmodels.sql"
    tables = ["productlines", "products", "offices", "employees", "customers", "payments", "orders", "orderdetails"]
    with open(dump, "w") as out:
        subprocess.run(
            ["mariadb-dump", *mariadb.client_args(cfg), "--databases", cfg.database, "--tables", *tables],
            stdout=out,
            env=mariadb.client_env(),
            check=True,
        )
    mariadb.root_sql(cfg, f"DROP DATABASE `{cfg.database}`; CREATE DATABASE `{cfg.database}`;")
    loaded = load_sql_dump(cfg, dump)
    assert loaded["customers"] == counts["customers"]
    pairs = query(
        cfg,
        "SELECT COUNT(DISTINCT o.customerNumber, d.productCode) FROM orders o "
        "JOIN orderdetails d ON d.orderNumber = o.orderNumber",
    )[0][0]
    assert loaded["ratings"] == pairs
    assert query(cfg, "SELECT MIN(productRating) >= 1 AND MAX(productRating) <= 5 FROM ratings")[0][0] == 1


def public_shaped_dump(cfg, path, with_ratings: bool) -> None:
    """A dump shaped like the public `mysqlsampledatabase.sql`: its own CREATE DATABASE and USE, every DROP TABLE
    up front in parent-first order (which an existing `ratings` table's foreign keys refuse), no FOREIGN_KEY_CHECKS
    switch, and (like the original) no ratings table unless asked."""
    tables = [t for t in TABLES if with_ratings or t != "ratings"]
    lines = [
        "/* classicmodels sample database, as published */",
        "CREATE DATABASE IF NOT EXISTS `classicmodels`;",
        "USE `classicmodels`;",
        *[f"DROP TABLE IF EXISTS `{t}`;" for t in tables],
    ]
    for table in tables:  # parents first, so each CREATE finds the tables its foreign keys name
        dumped = subprocess.run(
            ["mariadb-dump", *mariadb.client_args(cfg), "--compact", "--skip-add-drop-table", cfg.database, table],
            capture_output=True,
            text=True,
            env=mariadb.client_env(),
            check=True,
        ).stdout
        lines.append(dumped)
    path.write_text("\n".join(lines) + "\n")


def databases(cfg) -> set[str]:
    return set(mariadb.root_sql(cfg, "SHOW DATABASES").split())


@pytest.mark.parametrize("with_ratings", [False, True])
def test_the_public_dump_as_published_replaces_a_seeded_source(stack, tmp_path, with_ratings):
    cfg = stack.mariadb()
    original = seed(cfg, SeedSpec(customers=40, products=30, ratings=500, seed=3))
    dump = tmp_path / "mysqlsampledatabase.sql"
    public_shaped_dump(cfg, dump, with_ratings)
    seed(cfg, SeedSpec())  # a different, already seeded source with ratings referencing customers and products
    with pytest.raises(StackError, match=r"1451|foreign key"):  # what loading it straight into the source does
        mariadb.root_sql(cfg, dump.read_text().replace("`classicmodels`", f"`{cfg.database}`"))
    loaded = load_sql_dump(cfg, dump)
    assert {t: loaded[t] for t in ("customers", "products", "orders")} == {
        t: original[t] for t in ("customers", "products", "orders")
    }
    if with_ratings:
        assert loaded["ratings"] == original["ratings"]
    else:  # derived from the dump's orders
        assert loaded["ratings"] > 0
    # the ETL user still reads the new tables; no scratch database is left behind
    assert query(cfg, "SELECT COUNT(*) FROM ratings")[0][0] == loaded["ratings"]
    assert not {d for d in databases(cfg) if d.startswith(f"{cfg.database}__")}
    seed(cfg, SeedSpec())


def test_a_broken_dump_names_the_line_and_statement_and_leaves_the_source_intact(stack, seeded, tmp_path):
    cfg, counts = seeded
    seed(cfg, SeedSpec())
    dump = tmp_path / "broken.sql"
    dump.write_text(
        "CREATE DATABASE IF NOT EXISTS classicmodels;\nUSE classicmodels;\nDROP TABLE IF EXISTS ratings;\n"
        "CREATE TABLE ok_table (id int);\nINSERT INTO ok_table VALUES (1),,(2);\n"
    )
    with pytest.raises(
        StackError,
        match=r"(?s)broken\.sql: not loaded; the source is unchanged \(checked: 9 tables.*at line 5.*"
        r"line 5 of .*broken\.sql: INSERT INTO ok_table VALUES \(1\),,\(2\);",
    ):
        load_sql_dump(cfg, dump)
    with mariadb.connect(cfg, admin=True) as conn, conn.cursor() as cur:
        assert table_counts(cur) == counts
        cur.execute("SHOW TABLES LIKE 'ok_table'")
        assert cur.fetchone() is None
    assert not {d for d in databases(cfg) if d.startswith(f"{cfg.database}__")}


def source_dump(cfg) -> str:
    """The live source, every table's rows and definition, as text: equal text, equal source."""
    return subprocess.run(
        ["mariadb-dump", *mariadb.client_args(cfg), "--skip-dump-date", "--order-by-primary", cfg.database],
        capture_output=True,
        text=True,
        env=mariadb.client_env(),
        check=True,
    ).stdout


def test_a_use_of_the_source_after_a_statement_on_the_same_line_loads_into_the_scratch_database(stack, tmp_path):
    """Two files joined with `cat`, the first without a final newline: `...;USE classicmodels;` on one line, then
    the second file's drops and creates. They must land in the scratch database, not in the live source."""
    cfg = stack.mariadb()
    original = seed(cfg, SeedSpec(customers=40, products=30, ratings=500, seed=3))
    dump = tmp_path / "joined.sql"
    public_shaped_dump(cfg, dump, with_ratings=True)
    second = dump.read_text().split("USE `classicmodels`;\n", 1)[1]  # the drops, creates and inserts
    first = "/* first file */\nSET NAMES utf8mb4;"  # as published: no newline at its end
    dump.write_text(first + f"USE {cfg.database};\n" + second)
    assert f"SET NAMES utf8mb4;USE {cfg.database};" in dump.read_text()
    seed(cfg, SeedSpec())
    loaded = load_sql_dump(cfg, dump)
    assert {t: loaded[t] for t in ("customers", "products", "ratings")} == {
        t: original[t] for t in ("customers", "products", "ratings")
    }
    seed(cfg, SeedSpec())


@pytest.mark.parametrize(
    ("name", "statements", "bad_line"),
    [
        ("qualified-drop", "DROP TABLE IF EXISTS `{db}`.`ratings`;", 4),
        (
            "qualified-insert",
            "INSERT INTO {db}.ratings (customerNumber, productCode, productRating) VALUES (1,'x',5);",
            4,
        ),
        ("rename-into-source", "CREATE TABLE IF NOT EXISTS x (id int);\nRENAME TABLE x TO `{db}`.`x`;", 5),
    ],
)
def test_what_the_import_cannot_redirect_fails_with_its_line_and_leaves_the_source_byte_for_byte(
    stack, tmp_path, name, statements, bad_line
):
    cfg = stack.mariadb()
    seed(cfg, SeedSpec())
    before = source_dump(cfg)
    dump = tmp_path / f"{name}.sql"
    lines = ["CREATE DATABASE IF NOT EXISTS classicmodels;", "USE classicmodels;", "CREATE TABLE ok_table (id int);"]
    dump.write_text("\n".join(lines) + "\n" + statements.format(db=cfg.database) + "\n")
    unchanged = r"not loaded; the source is unchanged \(checked: 9 tables"
    with pytest.raises(StackError, match=rf"(?s){unchanged}.*at line {bad_line}.*line {bad_line} of "):
        load_sql_dump(cfg, dump)
    assert source_dump(cfg) == before
    assert not {d for d in databases(cfg) if d.startswith(f"{cfg.database}__")}
    assert "recsys_import" not in mariadb.root_sql(cfg, "SELECT user FROM mysql.user")


@pytest.mark.parametrize(
    ("name", "hostile", "line", "reason"),
    [
        ("shell", "\\! touch {marker}", 4, r"the client command \\!"),
        ("system", "system touch {marker}", 4, "the client command 'system'"),
        ("source", "source {marker}", 4, "the client command 'source'"),
        ("tee", "tee {marker}", 4, "the client command 'tee'"),
        ("in-executable-comment", "SELECT 1 /*!99999 \\! touch {marker} */;", 4, r"the client command \\!"),
        ("client-use", "\\u classicmodels", 4, r"the client command \\u"),
        ("quit", "quit", 4, "the client command 'quit'"),
    ],
)
def test_a_client_command_in_a_dump_is_refused_with_its_line_and_runs_nothing(
    stack, tmp_path, name, hostile, line, reason
):
    cfg = stack.mariadb()
    seed(cfg, SeedSpec())
    before = source_dump(cfg)
    marker = tmp_path / "outside-the-scratch-space"
    dump = tmp_path / f"{name}.sql"
    lines = ["CREATE DATABASE IF NOT EXISTS classicmodels;", "USE classicmodels;", "CREATE TABLE ok_table (id int);"]
    dump.write_text("\n".join([*lines, hostile.format(marker=marker), "SELECT 2;"]) + "\n")
    with pytest.raises(StackError, match=rf"{name}\.sql, line {line}: {reason}.*nothing was loaded"):
        load_sql_dump(cfg, dump)
    assert not marker.exists()
    assert source_dump(cfg) == before
    assert not {d for d in databases(cfg) if d.startswith(f"{cfg.database}__")}


@pytest.mark.parametrize(
    "command",
    ["\\! touch {marker}", "system touch {marker}", "tee {marker}", "\\T {marker}", "source {marker}"],
)
def test_the_client_itself_runs_no_command_of_a_dump_the_reading_missed(stack, tmp_path, command):
    """The second wall: what reaches the client unread (a reading that disagrees with the client's) still runs no
    command, as the import runs the client."""
    from recsys_local.seed.loader import DUMP_CLIENT_OPTIONS, _import_login

    cfg = stack.mariadb()
    marker = tmp_path / "outside-the-scratch-space"
    marker_source = tmp_path / "sourced.sql"
    marker_source.write_text(f"CREATE TABLE sourced (id int);\nSELECT '{marker}' INTO OUTFILE '{marker}';\n")
    target = marker_source if command.startswith("source") else marker
    scratch = f"{cfg.database}__probe"
    mariadb.root_sql(cfg, f"DROP DATABASE IF EXISTS `{scratch}`; CREATE DATABASE `{scratch}`;")
    try:
        with _import_login(cfg, scratch) as login:
            result = subprocess.run(
                ["mariadb", *login, *DUMP_CLIENT_OPTIONS, scratch],
                input=f"SELECT 1;\n{command.format(marker=target)}\nSELECT 2;\n".encode(),
                env=mariadb.client_env(),
                capture_output=True,
                check=False,
            )
        tables = mariadb.root_sql(cfg, f"SHOW TABLES FROM `{scratch}`").split()
    finally:
        mariadb.root_sql(cfg, f"DROP DATABASE IF EXISTS `{scratch}`;")
    assert result.returncode != 0
    assert b"at line 2" in result.stderr
    assert not marker.exists()
    assert "sourced" not in tables
