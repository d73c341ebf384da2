"""
# streaming_recommendations

Deploys the streaming pipeline: user activity on the Kinesis stream `<prefix>-kinesis-data-stream` -> Firehose
`<prefix>-delivery-stream`, whose transformation Lambda `<prefix>-transformation-lambda` turns each event into
recommendations -> S3 `<prefix>-<account>-recommendations/YYYY/MM/DD/HH/`; plus the model-inference API Lambda
`<prefix>-model-inference` behind a Function URL.

| task | what it does |
|---|---|
| `build_and_upload_packages` | builds both zips from `include/` (python3.11, x86_64, content-hashed), uploads new ones to the scripts bucket |
| `provision_vector_db` | Terraform root `terraform/vector_db` (idempotent): the vector DB's secret ARN and the ml-artifacts bucket |
| `resolve_model_version` | the `model_version` Param, else the ml-artifacts `latest.json` |
| `provision_streaming_infrastructure` | Terraform root `terraform/streaming_inference` with the package keys, the local stack locally |
| `deploy_lambda_functions` | creates or updates both functions' code and configuration (secret ARN, bucket, model version; never a password), waits until active |
| `put_smoke_test_event` | puts one test event on the stream |
| `wait_for_recommendations` | `S3KeySensor` for objects under this hour's `YYYY/MM/DD/HH/` prefix |
| `verify_smoke_recommendation` | finds the test event's line and checks it carries recommendations |

Runs when embeddings of a new model are loaded (`vector_db_embeddings` Asset), and by hand.

## Params

* `model_version` (empty = latest): the version the Lambdas load.
* `provision_infrastructure` (true): false only reads the streaming infrastructure's outputs.
* `smoke_test` (true): false skips the end-to-end check.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import Param, chain, dag, task

from recsys.assets import VECTOR_DB_EMBEDDINGS
from recsys.config import AWS_CONN_ID, MYSQL_CONN_ID
from recsys.dag_defaults import DEFAULT_ARGS


@dag(
    schedule=[VECTOR_DB_EMBEDDINGS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=DEFAULT_ARGS,
    tags=["streaming", "lambda", "firehose"],
    doc_md=__doc__,
    params={
        "model_version": Param("", type="string", description="model version to serve; empty = latest"),
        "provision_infrastructure": Param(True, type="boolean", description="apply Terraform / local provisioning"),
        "smoke_test": Param(True, type="boolean", description="put a test event and check its recommendation"),
    },
)
def streaming_recommendations() -> None:
    @task
    def build_and_upload_packages() -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from recsys.streaming.pipeline import build_and_upload

        return build_and_upload(S3Hook(aws_conn_id=AWS_CONN_ID).get_conn())

    @task
    def provision_vector_db(**context) -> dict:
        from recsys.provisioning import provisioner

        return provisioner().provision("vector_db", apply=bool(context["params"]["provision_infrastructure"]))

    @task
    def resolve_model_version(vector_db: dict, **context) -> str:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from recsys.streaming.pipeline import current_model_version

        requested = str(context["params"]["model_version"])
        client = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
        return requested or current_model_version(client, vector_db["ml_artifacts_bucket"])

    @task
    def provision_streaming_infrastructure(packages: dict, model_version: str, **context) -> dict:
        from recsys.provisioning import provisioner

        variables = {
            "transformation_package_key": packages["transformation"]["key"],
            "model_inference_package_key": packages["model_inference"]["key"],
            "model_version": model_version,
        }
        apply = bool(context["params"]["provision_infrastructure"])
        return provisioner().provision("streaming_inference", apply=apply, variables=variables)

    @task
    def deploy_lambda_functions(streaming: dict, vector_db: dict, packages: dict, model_version: str) -> dict:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        from airflow.providers.amazon.aws.hooks.lambda_function import LambdaHook

        from recsys.streaming.pipeline import deploy_all

        iam = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="iam").get_conn()
        return deploy_all(LambdaHook(aws_conn_id=AWS_CONN_ID).conn, iam, streaming, vector_db, packages, model_version)

    @task.short_circuit
    def smoke_test_enabled(**context) -> bool:
        return bool(context["params"]["smoke_test"])

    @task
    def put_smoke_test_event(streaming: dict, **context) -> dict:
        from airflow.providers.amazon.aws.hooks.kinesis import KinesisHook

        from recsys.streaming.generator import load_catalog
        from recsys.streaming.pipeline import put_smoke_event

        _, products = load_catalog(MYSQL_CONN_ID)
        client = KinesisHook(aws_conn_id=AWS_CONN_ID).conn
        tag = context["run_id"][-12:].replace(":", "").replace("+", "")
        return {
            **put_smoke_event(client, streaming["kinesis_stream_name"], products[0], tag),
            "bucket": streaming["recommendations_bucket"],
        }

    wait_for_recommendations = S3KeySensor(
        task_id="wait_for_recommendations",
        bucket_name="{{ ti.xcom_pull(task_ids='put_smoke_test_event')['bucket'] }}",
        bucket_key="{{ ti.xcom_pull(task_ids='put_smoke_test_event')['hour_prefix'] }}*",
        wildcard_match=True,
        aws_conn_id=AWS_CONN_ID,
        poke_interval=5,
        timeout=300,
        mode="reschedule",
    )

    @task
    def verify_smoke_recommendation(smoke: dict) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from recsys.streaming.pipeline import find_recommendation

        client = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
        return find_recommendation(client, smoke["bucket"], smoke["hour_prefix"], smoke["session_id"])

    packages = build_and_upload_packages()
    vector_db = provision_vector_db()
    model_version = resolve_model_version(vector_db)
    streaming = provision_streaming_infrastructure(packages, model_version)
    deployed = deploy_lambda_functions(streaming, vector_db, packages, model_version)
    smoke = put_smoke_test_event(streaming)
    chain(deployed, smoke_test_enabled(), smoke, wait_for_recommendations, verify_smoke_recommendation(smoke))


streaming_recommendations()
