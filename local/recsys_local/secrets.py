"""Passwords of the local stack: generated once per checkout, kept in `.local/secrets.json` (mode 0600).

Nothing secret lives in the repository; CI and every new clone get fresh random passwords.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from recsys_local.home import claim

SECRET_KEYS = ("mysql_etl_password", "mysql_admin_password", "vector_db_password", "airflow_db_password")


def load_or_create(home: Path) -> dict[str, str]:
    """Read the stack's passwords, generating any that are missing."""
    path = home / "secrets.json"
    data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [key for key in SECRET_KEYS if key not in data]
    if missing:
        for key in missing:
            data[key] = secrets.token_urlsafe(18)
        claim(home)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
    return data
