"""The local stack: real MariaDB, PostgreSQL + pgvector and a moto AWS endpoint on 127.0.0.1, supervised by pid.

``python -m recsys.localstack --help`` lists the commands (``make up``, ``make down`` and ``make status`` call it).
"""
