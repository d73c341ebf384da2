"""
# streaming_recommendations

Deploys the streaming pipeline: user activity on the Kinesis stream `<prefix>-kinesis-data-stream` -> Firehose
`<prefix>-delivery-stream`, whose transformation Lambda `<prefix>-transformation-lambda` turns each event into
recommendations -> S3 `<prefix>-<account>-recommendations/YYYY/MM/DD/HH/`; plus the model-inference API Lambda
`<prefix>-model-inference` behind a Function URL.

| task | what it does |
|---|---|
| `read_etl_outputs` | outputs of `terraform/etl` (applied by `batch_training_data`): the scripts and ml-artifacts buckets |
| `build_and_upload_packages` | builds both zips from `include/` (python3.11, x86_64, content-hashed), uploads new ones to the scripts bucket; with `prebuilt_packages`, checks the zips `make package` built instead |
| `read_vector_db_outputs` | outputs of `terraform/vector_db` (applied by `vector_db_embeddings`): the database's endpoint and master secret |
| `resolve_model_version` | the `model_version` Param, else the vector DB's live version; fails if the vector DB does not hold that version's tables |
| `provision_streaming_infrastructure` | applies `terraform/streaming_inference` (this DAG is its only applier) with the package keys and model version: Terraform owns every function's code location and configuration (`$LATEST`) |
| `promote_lambda_versions` | publishes `$LATEST` of each function as a version (checked to be this run's package) and moves its `live` alias, which Firehose and the Function URL invoke; or moves `live` back (`rollback_to_versions`) |
| `build_lambda_test_event` | a synthetic Firehose transformation event: one fresh valid record, one malformed |
| `check_transformation_lambda` | `LambdaInvokeFunctionOperator` invokes the `live` alias with it: no side effect, nothing delivered |
| `verify_transformation_response` | every recordId back once; the valid record `Ok` with recommendations of the served model version, the malformed one `ProcessingFailed` |
| `put_smoke_delivery_event` | puts one fresh event on the smoke-test delivery stream `<prefix>-delivery-stream-smoke` (DirectPut, same processor alias, role, bucket and key; prefix `smoke-tests/`): never into the production stream or hours |
| `wait_for_smoke_delivery` | `S3KeySensor` for an object under `smoke-tests/YYYY/MM/DD/HH/` written after the put |
| `verify_smoke_delivery` | finds the test event's line in objects written after the put and checks it carries recommendations |

Runs when embeddings of a new model are loaded (`vector_db_embeddings` Asset), and by hand.

## Params

* `model_version` (empty = the vector DB's live version): the version the Lambdas serve. The Lambdas take known
  customers' vectors from that version's user table (newcomers': that version's user tower) and search its item tables (`item_emb_<version key>`), so a newer
  model going live in the vector DB never mixes into their answers; each output line names its version.
* `provision_infrastructure` (true): false only reads the streaming root's outputs; promoting then fails unless
  `$LATEST` already runs the packages this run built (nothing moves on a mismatch).
* `allow_destroy` (false): apply even if the plan deletes or replaces a stateful resource (the stream, the bucket).
* `rollback_to_versions` (empty): `"<transformation version>[,<model-inference version>]"` moves `live` back to
  those published versions and skips building and applying (the smoke test still runs).
* `prebuilt_packages` (empty): `"<transformation sha256>,<model inference sha256>"` of zips built ahead of time
  (`make package`) and uploaded to the scripts bucket's `lambda/`: their sha256 is checked and nothing is built,
  for workers with no route to the package index or the RDS CA download. Empty: the workers'
  `RECSYS_PREBUILT_PACKAGES`, which Asset-started runs (no Params) take too.
* `smoke_test` (true): false skips the Lambda and delivery checks. Neither writes into the production output:
  smoke objects live under `smoke-tests/` (expire after a day).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import Param, chain, dag, task

from recsys.assets import VECTOR_DB_EMBEDDINGS
from recsys.config import AWS_CONN_ID
from recsys.dag_defaults import DEFAULT_ARGS
from recsys.provisioning import provision_in_task
from recsys.streaming import tasks as streaming_tasks


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
        "provision_infrastructure": Param(True, type="boolean", description="apply terraform/streaming_inference"),
        "allow_destroy": Param(False, type="boolean", description="allow a plan that replaces the stream or bucket"),
        "rollback_to_versions": Param(
            "",
            type="string",
            pattern=r"^$|^[0-9]*(,[0-9]*)?$",
            description="'<transformation>[,<model inference>]' published versions to move live back to",
        ),
        "smoke_test": Param(True, type="boolean", description="put a test event and check its recommendation"),
        "prebuilt_packages": Param(
            "",
            type="string",
            pattern=r"^$|^[0-9a-f]{64},[0-9a-f]{64}$",
            description="'<transformation sha256>,<model inference sha256>' of zips `make package` built, in the "
            "scripts bucket's lambda/: deploy those instead of building (workers without the internet)",
        ),
    },
)
def streaming_recommendations() -> None:
    @task
    def read_etl_outputs() -> dict:
        return provision_in_task("etl", apply=False)

    @task
    def build_and_upload_packages(etl: dict, **context) -> dict:
        return streaming_tasks.build_and_upload_packages(etl["scripts_bucket"], context["params"])

    @task
    def read_vector_db_outputs() -> dict:
        return provision_in_task("vector_db", apply=False)

    @task
    def resolve_model_version(vector_db: dict, **context) -> str:
        return streaming_tasks.resolve_model_version(vector_db, context["params"])

    @task
    def provision_streaming_infrastructure(packages: dict, model_version: str, **context) -> dict:
        arguments = streaming_tasks.streaming_root_arguments(packages, model_version, context["params"])
        return provision_in_task("streaming_inference", **arguments)

    @task
    def promote_lambda_versions(streaming: dict, packages: dict, **context) -> dict:
        return streaming_tasks.promote_lambda_versions(streaming, packages, context["params"])

    @task.short_circuit
    def smoke_test_enabled(**context) -> bool:
        return bool(context["params"]["smoke_test"])

    @task
    def build_lambda_test_event(streaming: dict, **context) -> dict:
        return streaming_tasks.build_lambda_test_event(streaming, context["run_id"])

    check_transformation_lambda = LambdaInvokeFunctionOperator(
        task_id="check_transformation_lambda",
        function_name="{{ ti.xcom_pull(task_ids='build_lambda_test_event')['function_name'] }}",
        qualifier="live",
        payload="{{ ti.xcom_pull(task_ids='build_lambda_test_event')['payload'] }}",
        aws_conn_id=AWS_CONN_ID,
    )

    @task
    def verify_transformation_response(response: str, test: dict, model_version: str) -> dict:
        return streaming_tasks.verify_transformation_response(response, test, model_version)

    @task
    def put_smoke_delivery_event(streaming: dict, **context) -> dict:
        return streaming_tasks.put_smoke_delivery_event(streaming, context["run_id"])

    wait_for_smoke_delivery = S3KeySensor(
        task_id="wait_for_smoke_delivery",
        bucket_name="{{ ti.xcom_pull(task_ids='put_smoke_delivery_event')['bucket'] }}",
        bucket_key="{{ ti.xcom_pull(task_ids='put_smoke_delivery_event')['hour_prefix'] }}*",
        wildcard_match=True,
        metadata_keys=["Key", "LastModified"],
        check_fn=streaming_tasks.delivered_after_put,
        aws_conn_id=AWS_CONN_ID,
        poke_interval=5,
        timeout=300,
        # poke, not reschedule: a reschedule-mode sensor with a short interval races the executor's late "success"
        # for its previous poke, and the scheduler fails the try as killed externally (apache/airflow#71172; seen
        # here under `make airflow`: a retry and its 60 s delay in an undisturbed deploy). The wait is a minute.
        mode="poke",
    )

    @task
    def verify_smoke_delivery(smoke: dict) -> dict:
        return streaming_tasks.verify_smoke_delivery(smoke)

    etl = read_etl_outputs()
    packages = build_and_upload_packages(etl)
    model_version = resolve_model_version(read_vector_db_outputs())
    streaming = provision_streaming_infrastructure(packages, model_version)
    deployed = promote_lambda_versions(streaming, packages)
    enabled = smoke_test_enabled()
    test = build_lambda_test_event(streaming)
    chain(deployed, enabled, test, check_transformation_lambda)
    verified = verify_transformation_response(check_transformation_lambda.output, test, model_version)
    smoke = put_smoke_delivery_event(streaming)
    chain(verified, smoke, wait_for_smoke_delivery, verify_smoke_delivery(smoke))


streaming_recommendations()
