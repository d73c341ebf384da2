"""
# platform_health

Checks, through the same Airflow connections the pipelines use, that the platform's three endpoints answer:

| task | connection | passes when |
|---|---|---|
| `check_mysql_source` | `mysql_source` | the classicmodels source answers and has `customers`, `products`, `ratings` |
| `check_vector_db` | `vector_db` (its host, else `terraform/vector_db`'s outputs) | PostgreSQL answers and offers the `vector` extension; before that root's first apply it reports `checked: false` (nothing to check yet) |
| `check_aws` | `aws_default` | STS and S3 answer (locally: the moto endpoint of the local stack) |

Run it by hand after configuring a new deployment, or after `make up`: a failure names the connection and what is
wrong with it. It writes nothing anywhere. Locally: `airflow dags test platform_health` with `.local/stack.env`
sourced (`make demo` does this).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from recsys.dag_defaults import DEFAULT_ARGS


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["platform", "operations"],
    doc_md=__doc__,
)
def platform_health() -> None:
    @task
    def check_mysql_source() -> dict:
        from recsys.checks.platform import check_mysql_source

        return check_mysql_source()

    @task
    def check_vector_db() -> dict:
        from recsys.checks.platform import check_vector_db

        return check_vector_db()

    @task
    def check_aws() -> dict:
        from recsys.checks.platform import check_aws

        return check_aws()

    check_mysql_source()
    check_vector_db()
    check_aws()


platform_health()
