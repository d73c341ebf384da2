"""The local stack: real MariaDB, PostgreSQL + pgvector and a moto AWS endpoint on 127.0.0.1, supervised by pid.

``python -m recsys_local --help`` lists the commands (``make up``, ``make down`` and ``make status`` call it).
"""

from __future__ import annotations

import os

from recsys.config import project_root


def pythonpath() -> str:
    """``PYTHONPATH`` for a process of the local platform: the production and serving packages (``include/``) and
    this one (``local/``)."""
    return os.pathsep.join(str(project_root() / folder) for folder in ("include", "local"))
