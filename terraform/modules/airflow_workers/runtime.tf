# What the DAGs' tasks call at run time (besides Terraform): the state they read, the objects they read and write,
# the Glue job they start and watch (its logs from the triggerer), the Lambda versions they publish and the aliases
# they move, the smoke test's invoke and put, the vector DB's secrets. Each statement names where in the code.
locals {
  arn      = "arn:${var.partition}"
  regional = "${var.region}:${var.account_id}"
  buckets  = [for key in ["datalake_bucket", "ml_artifacts_bucket", "recommendations_bucket", "scripts_bucket"] : var.names[key]]
  # each root's state and its S3 lock file (use_lockfile): <root>/terraform.tfstate(.tflock)
  state_keys = [for root in ["etl", "vector_db", "streaming_inference"] : "${local.arn}:s3:::${var.terraform_state_bucket}/${root}/terraform.tfstate*"]
  # the platform's three KMS keys, by alias (their ARNs do not exist before the roots run)
  key_aliases = [for name in ["glue_job", "vector_db", "delivery_stream"] : "alias/${var.names[name]}"]
  functions   = [for name in ["transformation_lambda", "model_inference_lambda"] : "${local.arn}:lambda:${local.regional}:function:${var.names[name]}"]
}

data "aws_iam_policy_document" "runtime" {
  statement {
    sid       = "TerraformStateBucket"
    actions   = ["s3:ListBucket"]
    resources = ["${local.arn}:s3:::${var.terraform_state_bucket}"]
  }

  statement {
    sid       = "TerraformStateAndLock"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = local.state_keys
  }

  # s3:ListBucket on the platform's buckets, which also makes a missing key answer 404 (a sensor's "not yet")
  # instead of 403: provision-data's Buckets statement grants it

  # platform_health (recsys/checks/platform.py) lists the account's buckets: the action has no narrower resource
  statement {
    sid       = "PlatformHealthListsBuckets"
    actions   = ["s3:ListAllMyBuckets"]
    resources = ["*"]
  }

  statement {
    sid     = "ReadPlatformObjects"
    actions = ["s3:GetObject"]
    resources = [
      "${local.arn}:s3:::${var.names.datalake_bucket}/*",
      "${local.arn}:s3:::${var.names.ml_artifacts_bucket}/*",
      "${local.arn}:s3:::${var.names.scripts_bucket}/glue/*",
      "${local.arn}:s3:::${var.names.scripts_bucket}/lambda/*",
      "${local.arn}:s3:::${var.names.recommendations_bucket}/smoke-tests/*",
    ]
  }

  # etl/publish.py (the Glue script), streaming/deploy.py (Lambda zips), model/artifacts.py (versions, promotion)
  statement {
    sid     = "WritePlatformObjects"
    actions = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [
      "${local.arn}:s3:::${var.names.scripts_bucket}/glue/*",
      "${local.arn}:s3:::${var.names.scripts_bucket}/lambda/*",
      "${local.arn}:s3:::${var.names.ml_artifacts_bucket}/*",
    ]
  }

  # objects under the etl and delivery-stream keys (through S3), the vector DB's secrets (through Secrets Manager),
  # the smoke test's put to a stream encrypted with the delivery-stream key (through Firehose)
  statement {
    sid       = "UsePlatformKeysThroughServices"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = local.key_aliases
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com", "secretsmanager.${var.region}.amazonaws.com", "firehose.${var.region}.amazonaws.com"]
    }
  }

  # vectordb/roles.py writes the loader's and reader's passwords; credentials.py reads them
  statement {
    sid       = "VectorDbRoleSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]
    resources = [for name in ["vector_db_loader", "vector_db_reader"] : "${local.arn}:secretsmanager:${local.regional}:secret:${var.names[name]}-*"]
  }

  # the master user's secret, which RDS creates and names (rds!db-...): only the platform's instance's
  statement {
    sid       = "VectorDbMasterSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = ["${local.arn}:secretsmanager:${local.regional}:secret:rds!db-*"]
    condition {
      test     = "StringEquals"
      variable = "secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn"
      values   = ["${local.arn}:rds:${local.regional}:db:${var.names.vector_db}"]
    }
  }

  # batch_training_data: GlueJobOperator (deferrable; a retry looks its run up), the triggerer's GlueJobCompleteTrigger
  statement {
    sid       = "RunTheGlueJob"
    actions   = ["glue:GetJob", "glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns"]
    resources = ["${local.arn}:glue:${local.regional}:job/${var.names.glue_job}"]
  }

  # the trigger forwards the run's output and error logs (verbose=True)
  statement {
    sid     = "ReadTheGlueJobLogs"
    actions = ["logs:GetLogEvents"]
    resources = [
      "${local.arn}:logs:${local.regional}:log-group:/aws-glue/jobs*",
      "${local.arn}:logs:${local.regional}:log-group:/aws-glue/jobs*:log-stream:*",
    ]
  }

  # streaming/deploy.py publishes a version of each function and moves (or rolls back) its live alias: the same
  # actions on the same functions as provision-streaming's Functions statement, which grants them

  # the streaming DAG's smoke test: invoke the live transformation, put through the smoke delivery stream
  statement {
    sid       = "SmokeTestInvoke"
    actions   = ["lambda:InvokeFunction"]
    resources = ["${local.arn}:lambda:${local.regional}:function:${var.names.transformation_lambda}:live"]
  }

  statement {
    sid       = "SmokeTestPut"
    actions   = ["firehose:PutRecord"]
    resources = ["${local.arn}:firehose:${local.regional}:deliverystream/${var.names.delivery_stream}-smoke"]
  }
}
