"""Provision a pipeline's resources in the local stack, with the same names Terraform gives them in AWS.

Everything goes through the Amazon provider's hooks on the ``aws_default`` connection (whose ``endpoint_url``
points at the local stack), so this is the same code path the DAGs use. Every step is idempotent.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from recsys.config import AWS_CONN_ID, MYSQL_CONN_ID, TRAINING_DATA_PREFIX, VECTOR_DB_CONN_ID, platform_names
from recsys.provisioning import ProvisioningError, check_outputs

log = logging.getLogger(__name__)

GLUE_SCRIPT_KEY = "glue/ratings_training_job.py"


def rds_secret(conn_id: str, engine: str, default_port: int) -> dict[str, Any]:
    """An Airflow connection as the JSON an RDS-managed secret holds (engine, host, port, username, ...)."""
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return {
        "engine": engine,
        "host": conn.host,
        "port": conn.port or default_port,
        "username": conn.login,
        "password": conn.password,
        "dbname": conn.schema,
    }


class LocalProvisioner:
    def __init__(self, aws_conn_id: str = AWS_CONN_ID) -> None:
        self.aws_conn_id = aws_conn_id
        self.names = platform_names()

    def provision(self, pipeline: str, apply: bool = True, variables: dict[str, str] | None = None) -> dict[str, Any]:
        if pipeline == "streaming_inference":
            return check_outputs(pipeline, self._streaming(apply, variables or {}))
        step = {"etl": self._etl, "vector_db": self._vector_db}.get(pipeline)
        if step is None:
            raise ProvisioningError(f"no local provisioning for pipeline {pipeline!r}")
        return check_outputs(pipeline, step(apply))

    # --- helpers ----------------------------------------------------------------------------------------------------
    def _client(self, service: str) -> Any:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type=service).get_conn()

    def _bucket(self, name: str, apply: bool) -> None:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=self.aws_conn_id)
        if apply and not hook.check_for_bucket(name):
            hook.create_bucket(bucket_name=name)
            log.info("created bucket %s", name)

    def _secret(self, name: str, value: dict[str, Any], apply: bool) -> str:
        """Create or update a JSON secret; return its ARN. Never logs the value."""
        client = self._client("secretsmanager")
        body = json.dumps(value)
        try:
            current = client.get_secret_value(SecretId=name)
            if apply and current.get("SecretString") != body:
                client.put_secret_value(SecretId=name, SecretString=body)
                log.info("updated secret %s", name)
            return str(current["ARN"])
        except client.exceptions.ResourceNotFoundException:
            if not apply:
                raise ProvisioningError(f"secret {name} does not exist: run with provisioning enabled") from None
            arn = client.create_secret(Name=name, SecretString=body)["ARN"]
            log.info("created secret %s", name)
            return str(arn)

    def _role_arn(self, name: str, service: str, apply: bool) -> str:
        iam = self._client("iam")
        try:
            return str(iam.get_role(RoleName=name)["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            if not apply:
                raise ProvisioningError(f"IAM role {name} does not exist: run with provisioning enabled") from None
            trust = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
            }
            return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])

    # --- pipelines --------------------------------------------------------------------------------------------------
    def _etl(self, apply: bool) -> dict[str, Any]:

        names = self.names
        for bucket in (names.datalake_bucket, names.scripts_bucket):
            self._bucket(bucket, apply)
        source_secret_arn = self._secret(names.source_db_secret, rds_secret(MYSQL_CONN_ID, "mysql", 3306), apply)
        glue = self._client("glue")
        if apply:
            with contextlib.suppress(glue.exceptions.AlreadyExistsException):
                glue.create_database(DatabaseInput={"Name": names.glue_database})
        role_arn = self._role_arn(names.glue_role, "glue.amazonaws.com", apply)
        script_url = f"s3://{names.scripts_bucket}/{GLUE_SCRIPT_KEY}"
        job = {
            "Role": role_arn,
            "Command": {"Name": "glueetl", "ScriptLocation": script_url, "PythonVersion": "3"},
            "DefaultArguments": {
                "--source_secret_id": source_secret_arn,
                "--target_path": f"s3://{names.datalake_bucket}/{TRAINING_DATA_PREFIX}",
                "--catalog_database": names.glue_database,
                "--jdbc_partitions": "4",
                "--enable-continuous-cloudwatch-log": "true",
            },
            "ExecutionProperty": {"MaxConcurrentRuns": 1},
            "GlueVersion": "4.0",
            "WorkerType": "G.1X",
            "NumberOfWorkers": 2,
            "Timeout": 120,
        }
        if apply:
            try:
                glue.get_job(JobName=names.glue_job)
                glue.update_job(JobName=names.glue_job, JobUpdate=job)
            except glue.exceptions.EntityNotFoundException:
                glue.create_job(Name=names.glue_job, **job)
                log.info("created Glue job %s", names.glue_job)
        return {
            "datalake_bucket": names.datalake_bucket,
            "scripts_bucket": names.scripts_bucket,
            "glue_job_name": names.glue_job,
            "glue_script_s3_url": script_url,
            "glue_database": names.glue_database,
            "source_secret_arn": source_secret_arn,
        }

    def _vector_db(self, apply: bool) -> dict[str, Any]:

        names = self.names
        self._bucket(names.ml_artifacts_bucket, apply)
        secret = rds_secret(VECTOR_DB_CONN_ID, "postgres", 5432)
        secret_arn = self._secret(names.vector_db_secret, secret, apply)
        return {
            "ml_artifacts_bucket": names.ml_artifacts_bucket,
            "vector_db_secret_arn": secret_arn,
            "vector_db_host": secret["host"],
            "vector_db_port": secret["port"],
            "vector_db_name": secret["dbname"],
        }

    def _streaming(self, apply: bool, variables: dict[str, str]) -> dict[str, Any]:
        """Kinesis stream, recommendations bucket, the Lambdas' roles and the Firehose delivery stream.

        The functions themselves are created by the deploy DAG's next task (in AWS Terraform creates them from the
        same package keys, and that task updates them).
        """
        names = self.names
        self._bucket(names.recommendations_bucket, apply)
        self._bucket(names.scripts_bucket, apply)
        kinesis = self._client("kinesis")
        if apply:
            try:
                kinesis.describe_stream_summary(StreamName=names.kinesis_stream)
            except kinesis.exceptions.ResourceNotFoundException:
                kinesis.create_stream(StreamName=names.kinesis_stream, ShardCount=1)
                kinesis.get_waiter("stream_exists").wait(StreamName=names.kinesis_stream)
                log.info("created Kinesis stream %s", names.kinesis_stream)
        stream_arn = kinesis.describe_stream_summary(StreamName=names.kinesis_stream)["StreamDescriptionSummary"][
            "StreamARN"
        ]
        for function in (names.transformation_lambda, names.model_inference_lambda):
            self._role_arn(f"{function}-role", "lambda.amazonaws.com", apply)
        firehose_role = self._role_arn(f"{names.delivery_stream}-role", "firehose.amazonaws.com", apply)
        firehose = self._client("firehose")
        lambda_arn = f"arn:aws:lambda:{names.region}:{names.account}:function:{names.transformation_lambda}:$LATEST"
        destination = {
            "RoleARN": firehose_role,
            "BucketARN": f"arn:aws:s3:::{names.recommendations_bucket}",
            "Prefix": "!{timestamp:yyyy/MM/dd/HH}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
            "ProcessingConfiguration": {
                "Enabled": True,
                "Processors": [
                    {
                        "Type": "Lambda",
                        "Parameters": [
                            {"ParameterName": "LambdaArn", "ParameterValue": lambda_arn},
                            {"ParameterName": "NumberOfRetries", "ParameterValue": "3"},
                        ],
                    }
                ],
            },
        }
        if apply and names.delivery_stream not in firehose.list_delivery_streams().get("DeliveryStreamNames", []):
            firehose.create_delivery_stream(
                DeliveryStreamName=names.delivery_stream,
                DeliveryStreamType="KinesisStreamAsSource",
                KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": firehose_role},
                ExtendedS3DestinationConfiguration=destination,
            )
            log.info("created Firehose delivery stream %s", names.delivery_stream)
        return {
            "recommendations_bucket": names.recommendations_bucket,
            "kinesis_stream_name": names.kinesis_stream,
            "delivery_stream_name": names.delivery_stream,
            "transformation_lambda_name": names.transformation_lambda,
            "model_inference_lambda_name": names.model_inference_lambda,
            "lambda_packages_bucket": names.scripts_bucket,
        }
