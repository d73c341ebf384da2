"""
# batch_training_data

Nightly (02:00 UTC) refresh of the recommender's training data: MySQL `classicmodels` -> AWS Glue (Spark) -> S3
datalake `ratings-ml-training/`, Parquet, partitioned `customerNumber=<N>/`.

| task | what it does |
|---|---|
| `provision_etl_infrastructure` | applies Terraform root `terraform/etl` (buckets, Glue connection, job and catalog table; this DAG is its only applier), for AWS or the local stack; returns the names |
| `publish_glue_script` | uploads `include/recsys/etl/glue_job.py` to the scripts bucket when its sha256 changed |
| `run_glue_job` | `GlueJobOperator` (deferrable, Glue logs in the task log; a retry re-attaches to a run it started) |
| `wait_for_manifest` | `S3KeySensor` on this run's manifest `manifests/ratings-ml-training/<run id>.json` |
| `check_training_data_quality` | from the files' Parquet footers (no data downloaded): schema = contract, rows = what the job read minus what it excluded, no NULL keys, ratings 1..5, one partition per customer; the live source's count reported as drift; publishes the `ratings_ml_training` Asset with the run's manifest in the event's `extra` |

The job replaces the whole dataset each run atomically (commit = one `_manifest.json` PUT; how, and what a reader
sees meanwhile: docs/pipelines.md, "The batch training data"). Excluded source rows (NULL keys, ratings outside 1..5,
unknown customers or products) are counted in the manifest.

## Params (trigger form)

* `provision_infrastructure` (default true): false reads the current infrastructure outputs without applying.
* `allow_destroy` (default false): apply even if the plan deletes or replaces a stateful resource (a bucket, the
  catalog database, a key); without it such a plan fails the task and names the resources.
* `partition_layout`: `customer` (the lab's layout, default) or `bucketed` (64 coarse partitions: far fewer files).
* `jdbc_partitions`: parallel JDBC reads of `ratings` (default 4).
* `max_excluded_fraction` (default 0.01): the quality check fails when a larger share of the source's ratings had to
  be excluded (a corrupted source), with the counts by reason in its message.
* `max_source_drift` (default 0.05): the source keeps taking ratings while the job runs; the check compares the live
  source's count with what the run wrote and logs the difference as drift, failing only beyond this share.

Manual runs have no data interval in Airflow 3; nothing here depends on one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import Param, chain, dag, task

from recsys.assets import TRAINING_DATA
from recsys.config import AWS_CONN_ID, MYSQL_CONN_ID
from recsys.dag_defaults import DEFAULT_ARGS
from recsys.provisioning import provision_in_task


@dag(
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args=DEFAULT_ARGS,
    tags=["batch", "glue", "training-data"],
    doc_md=__doc__,
    render_template_as_native_obj=False,
    params={
        "provision_infrastructure": Param(True, type="boolean", description="apply terraform/etl"),
        "allow_destroy": Param(False, type="boolean", description="allow a plan that replaces a bucket or key"),
        "partition_layout": Param("customer", enum=["customer", "bucketed"], description="output partition layout"),
        "jdbc_partitions": Param(4, type="integer", minimum=1, maximum=64, description="parallel JDBC reads"),
        "max_excluded_fraction": Param(
            0.01, type="number", minimum=0, maximum=1, description="fail when more source ratings are invalid"
        ),
        "max_source_drift": Param(
            0.05, type="number", minimum=0, maximum=1, description="fail when the live source differs more than this"
        ),
    },
)
def batch_training_data() -> None:
    @task
    def provision_etl_infrastructure(**context) -> dict:
        params = context["params"]
        return provision_in_task(
            "etl", apply=bool(params["provision_infrastructure"]), allow_destroy=bool(params["allow_destroy"])
        )

    @task
    def publish_glue_script(infra: dict, **context) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from recsys.etl.publish import manifest_url, publish_glue_script

        published = publish_glue_script(S3Hook(aws_conn_id=AWS_CONN_ID), infra["glue_script_s3_url"])
        return {**published, "manifest_url": manifest_url(infra["datalake_bucket"], context["run_id"])}

    infra = provision_etl_infrastructure()
    script = publish_glue_script(infra)

    run_glue_job = GlueJobOperator(
        task_id="run_glue_job",
        job_name="{{ ti.xcom_pull(task_ids='provision_etl_infrastructure')['glue_job_name'] }}",
        script_args={
            "--run_id": "{{ run_id }}",
            "--manifest_path": "{{ ti.xcom_pull(task_ids='publish_glue_script')['manifest_url'] }}",
            "--partition_layout": "{{ params.partition_layout }}",
            "--jdbc_partitions": "{{ params.jdbc_partitions }}",
        },
        aws_conn_id=AWS_CONN_ID,
        deferrable=True,
        verbose=True,
        durable=True,
        waiter_delay=10,
        waiter_max_attempts=1000,
    )

    wait_for_manifest = S3KeySensor(
        task_id="wait_for_manifest",
        bucket_key="{{ ti.xcom_pull(task_ids='publish_glue_script')['manifest_url'] }}",
        aws_conn_id=AWS_CONN_ID,
        deferrable=True,
        poke_interval=10,
        timeout=900,
    )

    @task(outlets=[TRAINING_DATA])
    def check_training_data_quality(script: dict, **context) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.providers.mysql.hooks.mysql import MySqlHook

        from recsys.etl.training_data import check_published_dataset

        params = context["params"]
        report = check_published_dataset(
            S3Hook(aws_conn_id=AWS_CONN_ID),
            MySqlHook(mysql_conn_id=MYSQL_CONN_ID),
            script["manifest_url"],
            float(params["max_excluded_fraction"]),
            float(params["max_source_drift"]),
        )
        # consumers (recommender_model) train on exactly this run: the event carries its manifest
        context["outlet_events"][TRAINING_DATA].extra = {
            "manifest_url": report["manifest"],
            "run_id": report["run_id"],
            "rows": report["rows"],
        }
        return report

    chain(infra, script, run_glue_job, wait_for_manifest, check_training_data_quality(script))


batch_training_data()
