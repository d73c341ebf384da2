"""
# vector_db_embeddings

Loads the model's embeddings from the `ml-artifacts` bucket into PostgreSQL + pgvector (`item_emb`, `user_emb`),
safely at any time, even while the streaming pipeline reads them.

| task | what it does |
|---|---|
| `provision_vector_db` | applies Terraform root `terraform/vector_db` (RDS PostgreSQL, its RDS-managed secret; this DAG is its only applier), for AWS or the local stack |
| `ensure_database_roles` | as the master user: creates or repairs the `recsys_loader` and `recsys_reader` roles and their grants, puts new passwords into their secrets (Terraform creates them empty); see `recsys.vectordb.roles` |
| `read_etl_outputs` | the outputs of `terraform/etl` (applied by `batch_training_data`): the ml-artifacts bucket |
| `resolve_model_version` | the `model_version` Param, else the bucket's `latest.json` pointer |
| `wait_for_embeddings` | `S3KeySensor` for both CSVs of that version (`versions/<v>/embeddings/*.csv`), up to `RECSYS_ARTIFACT_WAIT_SECONDS` (1800) |
| `report_missing_embeddings` | only when the wait failed: fails the run naming the missing file(s); nothing live was touched |
| `validate_embeddings` | header `id,embedding`, unique non-empty ids, 32 finite floats per row; errors name file and line; nothing live touched |
| `load_embeddings` | as `recsys_loader`: binary COPY into staging tables, the items' search index (IVFFlat over keys that make inner-product search a nearest-neighbour search), ANALYZE, swap both tables in one transaction, record the version |
| `verify_vector_db` | as `recsys_reader` (what the Lambdas use): row counts equal the CSVs, the search index present, version recorded; publishes the `vector_db_embeddings` Asset |

Runs when the `ml_artifacts` Asset updates (after `recommender_model`) and by hand. The `vector_db` connection holds
only the TLS settings in AWS (docs/aws-deployment.md, step 2): the endpoint and the master user's RDS-managed secret
are `terraform/vector_db`'s outputs, read at run time, and serve `ensure_database_roles` only. The load and the verify
log in as their own roles, with the passwords in the roles' secrets (outputs `vector_db_loader_secret_arn`,
`vector_db_reader_secret_arn`).

## Params

* `model_version` (empty = latest): load a specific published version, e.g. to roll back.
* `provision_infrastructure` (true): false only reads the root's outputs.
* `rotate_role_passwords` (false): give the loader and reader roles new passwords (database first, then their
  secrets; a Lambda that starts in between fails one invocation, which Firehose retries).
* `allow_destroy` (false): apply even if the plan deletes or replaces a stateful resource (the RDS instance); without
  it such a plan fails the task and names the resources.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import Param, chain, dag, task

from recsys.assets import ML_ARTIFACTS, VECTOR_DB_EMBEDDINGS
from recsys.config import AWS_CONN_ID, parse_time_setting
from recsys.dag_defaults import DEFAULT_ARGS
from recsys.provisioning import provision_in_task
from recsys.vectordb import tasks as vector_db_tasks

#: How long to wait for a version's embedding files before failing with what is missing (a half-published version).
#: Read at parse time: the sensor's timeout is part of the DAG's definition (recsys.config says which values are).
ARTIFACT_WAIT_SECONDS = parse_time_setting("artifact_wait_seconds")


@dag(
    schedule=[ML_ARTIFACTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["vector-db", "pgvector"],
    doc_md=__doc__,
    params={
        "model_version": Param("", type="string", description="version to load; empty loads latest.json's"),
        "provision_infrastructure": Param(True, type="boolean", description="apply terraform/vector_db"),
        "rotate_role_passwords": Param(False, type="boolean", description="new passwords for the DB roles"),
        "allow_destroy": Param(False, type="boolean", description="allow a plan that replaces the database"),
    },
)
def vector_db_embeddings() -> None:
    @task
    def provision_vector_db(**context) -> dict:
        params = context["params"]
        return provision_in_task(
            "vector_db", apply=bool(params["provision_infrastructure"]), allow_destroy=bool(params["allow_destroy"])
        )

    @task
    def ensure_database_roles(infra: dict, **context) -> dict:
        return vector_db_tasks.ensure_database_roles(infra, context["params"])

    @task
    def read_etl_outputs() -> dict:
        return provision_in_task("etl", apply=False)

    @task
    def resolve_model_version(etl: dict, **context) -> dict:
        return vector_db_tasks.resolve_model_version(etl, context["params"])

    wait_for_embeddings = S3KeySensor(
        task_id="wait_for_embeddings",
        bucket_key="{{ ti.xcom_pull(task_ids='resolve_model_version')['keys'] }}",
        aws_conn_id=AWS_CONN_ID,
        deferrable=True,
        poke_interval=min(15, ARTIFACT_WAIT_SECONDS),
        timeout=ARTIFACT_WAIT_SECONDS,
        render_template_as_native_obj=True,
    )

    @task(trigger_rule="one_failed")
    def report_missing_embeddings(**context) -> None:
        target = context["ti"].xcom_pull(task_ids="resolve_model_version")
        vector_db_tasks.report_missing_embeddings(target, ARTIFACT_WAIT_SECONDS)

    @task
    def validate_embeddings(target: dict) -> dict:
        return vector_db_tasks.validate_embeddings(target)

    @task
    def load_embeddings(target: dict, infra: dict) -> dict:
        return vector_db_tasks.load_embeddings(target, infra)

    @task(outlets=[VECTOR_DB_EMBEDDINGS])
    def verify_vector_db(counts: dict, target: dict, infra: dict) -> dict:
        return vector_db_tasks.verify_vector_db(counts, target, infra)

    infra = provision_vector_db()
    roles = ensure_database_roles(infra)
    target = resolve_model_version(read_etl_outputs())
    chain(infra, target)
    counts = validate_embeddings(target)
    load = load_embeddings(target, infra)
    chain(target, wait_for_embeddings, counts, load, verify_vector_db(counts, target, infra))
    chain(roles, load)
    chain(wait_for_embeddings, report_missing_embeddings())


vector_db_embeddings()
