"""The vector DB's roles: each client logs in as a role that may do its job and nothing more.

* the **master** user (the RDS-managed secret; locally the stack's ``recsys``): only :func:`ensure_roles`, which
  creates the roles, the extension and the grants.
* :data:`LOADER_ROLE` (``vector_db_embeddings``' load): ``CREATE`` in schema ``public``; owns ``embedding_versions``
  and every ``item_emb*``/``user_emb*`` table and view (staging included); cannot read anything else.
* :data:`READER_ROLE` (the streaming Lambdas, the DAG's verify): ``SELECT`` on the loader's relations only, read-only
  transactions, cannot create, change or drop anything.

:func:`ensure_roles` runs as the master user at the start of every ``vector_db_embeddings`` run (and of a local
``make up`` restore) and is idempotent: it creates what is missing and puts back what drifted. Passwords live only in
each role's Secrets Manager secret (``{"username", "password"}``; created empty by Terraform). A role whose secret has
no value yet, or every role when ``rotate`` is asked, gets a new random password: the database first, then the
secret. The password reaches the server only as a SCRAM verifier computed here (libpq's ``PQencryptPasswordConn``),
so neither statement logs nor ``pg_stat_statements`` ever see it.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

log = logging.getLogger(__name__)

LOADER_ROLE = "recsys_loader"
READER_ROLE = "recsys_reader"
ROLES = {"loader": LOADER_ROLE, "reader": READER_ROLE}

#: The loader's relations in schema ``public`` (SQL LIKE patterns): they move to the loader when an older
#: deployment's master user owns them.
LOADER_RELATIONS = ("embedding\\_versions", "item\\_emb%", "user\\_emb%")
#: The search-key functions of the item tables (``<item table>_key(vector)``), which the loader drops with them.
LOADER_FUNCTIONS = "item\\_emb%\\_key"


def read_secret(client: Any, secret_arn: str) -> dict[str, str] | None:
    """The role's current credentials, or None when its secret holds no (usable) value yet."""
    try:
        value = client.get_secret_value(SecretId=secret_arn)
    except client.exceptions.ResourceNotFoundException:
        return None  # a secret without a value version answers "can't find ... AWSCURRENT"
    try:
        body = json.loads(value.get("SecretString") or "")
    except json.JSONDecodeError:
        log.warning("secret %s does not hold JSON credentials: a new password replaces it", secret_arn)
        return None
    if not isinstance(body, dict) or not body.get("username") or not body.get("password"):
        return None
    return {"username": str(body["username"]), "password": str(body["password"])}


def _verifier(conn: Any, role: str, password: str) -> str:
    """SCRAM-SHA-256 verifier of the password, computed client-side."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def _set_role(conn: Any, role: str, password: str, reader: bool) -> str:
    from psycopg import sql

    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        # no other attribute: a new role has none, and only a superuser may name SUPERUSER/REPLICATION at all
        sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(_verifier(conn, role, password))
        )
    )
    if reader:
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(role)))
    return "updated" if exists else "created"


def _grant(conn: Any, database: str, roles: dict[str, str]) -> list[str]:
    """Privileges of both roles; returns the loader relations and key functions whose owner moved to the loader."""
    from psycopg import sql

    loader, reader, db = sql.Identifier(roles["loader"]), sql.Identifier(roles["reader"]), sql.Identifier(database)
    # The master administers the loader's objects (owner changes, default privileges) as a member of the role.
    conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(loader))
    conn.execute(sql.SQL("REVOKE CREATE, TEMPORARY ON DATABASE {} FROM PUBLIC").format(db))
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(db, loader, reader))
    conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # PostgreSQL < 15 grants it to everyone
    conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(loader))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(reader))
    moved = []
    for name, kind in conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p') AND pg_get_userbyid(c.relowner) <> %s "
        "AND (c.relname LIKE %s OR c.relname LIKE %s OR c.relname LIKE %s) ORDER BY c.relname",
        (roles["loader"], *LOADER_RELATIONS),
    ).fetchall():
        noun = "VIEW" if kind == "v" else "TABLE"
        conn.execute(sql.SQL(f"ALTER {noun} {{}} OWNER TO {{}}").format(sql.Identifier(name), loader))
        moved.append(name)
    # A version's key function goes with its tables: the loader drops both when it prunes the version.
    for (signature,) in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> %s AND p.proname LIKE %s ORDER BY 1",
        (roles["loader"], LOADER_FUNCTIONS),
    ).fetchall():  # regprocedure's text is PostgreSQL's own quoting of the name and argument types
        conn.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(signature), loader))
        moved.append(signature)
    # What the loader creates from now on is readable by the reader; what it created before, too.
    conn.execute(
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
            loader, reader
        )
    )
    for (name,) in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p') AND pg_get_userbyid(c.relowner) = %s",
        (roles["loader"],),
    ).fetchall():
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(name), reader))
    return moved


def ensure_roles(
    master: dict[str, Any],
    secrets_client: Any,
    secret_arns: dict[str, str],
    rotate: bool = False,
    roles: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create or repair the loader and reader roles as the master user (``master``: psycopg keyword arguments) and
    keep each role's password equal to its secret (``secret_arns``: ``{"loader": arn, "reader": arn}``).

    Returns what was done, nothing secret: ``{"roles": {"loader": "created|updated", ...}, "new_passwords": [...],
    "owners_moved": [...]}``."""
    import psycopg

    roles = roles or ROLES
    missing = sorted(set(ROLES) - set(secret_arns))
    if missing:
        raise ValueError(f"no secret ARN for the {', '.join(missing)} role(s)")
    credentials: dict[str, dict[str, str]] = {}
    new: list[str] = []
    for kind, role in roles.items():
        current = None if rotate else read_secret(secrets_client, secret_arns[kind])
        if current is not None and current["username"] != role:
            log.warning(
                "secret of the %s role names user %r, not %r: a new password replaces it",
                kind,
                current["username"],
                role,
            )
            current = None
        if current is None:
            current = {"username": role, "password": secrets.token_urlsafe(24)}
            new.append(kind)
        credentials[kind] = current
    done: dict[str, str] = {}
    with psycopg.connect(**master, autocommit=True) as conn, conn.transaction():
        if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            conn.execute("CREATE EXTENSION vector")
        for kind, role in roles.items():
            done[kind] = _set_role(conn, role, credentials[kind]["password"], reader=kind == "reader")
        moved = _grant(conn, str(master.get("dbname") or "postgres"), roles)
    # The database accepts the new passwords now; the secrets follow (a failure here leaves the old secret, which
    # the next run puts back into the database).
    for kind in new:
        secrets_client.put_secret_value(SecretId=secret_arns[kind], SecretString=json.dumps(credentials[kind]))
    log.info(
        "vector DB roles: %s; new passwords for %s; relations moved to %s: %s",
        ", ".join(f"{roles[k]} {v}" for k, v in done.items()),
        ", ".join(new) or "none",
        roles["loader"],
        ", ".join(moved) or "none",
    )
    return {"roles": done, "new_passwords": new, "owners_moved": moved}
