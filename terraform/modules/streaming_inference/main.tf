# Streaming recommendations: Kinesis data stream -> Firehose (transformation Lambda) -> S3 recommendations bucket,
# plus the model-inference Lambda behind a Function URL.
# Firehose, Kinesis and the Lambdas use the key through their roles' IAM policies; only CloudWatch Logs needs a
# key-policy grant, for this pipeline's log groups.

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
  ec2       = "arn:${local.partition}:ec2:${var.region}:${var.account_id}"
}

module "kms" {
  source = "../kms_key"
  alias  = var.names.delivery_stream
  region = var.region
  log_group_arns = [
    "arn:${local.partition}:logs:${var.region}:${var.account_id}:log-group:/aws/lambda/${var.names.transformation_lambda}",
    "arn:${local.partition}:logs:${var.region}:${var.account_id}:log-group:/aws/lambda/${var.names.model_inference_lambda}",
    "arn:${local.partition}:logs:${var.region}:${var.account_id}:log-group:/aws/kinesisfirehose/${var.names.delivery_stream}",
  ]
}

module "recommendations" {
  source          = "../secure_bucket"
  name            = var.names.recommendations_bucket
  kms_key_arn     = module.kms.arn
  expire_prefixes = { "errors/" = var.error_retention_days, "smoke-tests/" = 1 }
}

data "aws_subnet" "private" {
  for_each = toset(var.private_subnet_ids)
  id       = each.value
}

resource "aws_kinesis_stream" "activity" {
  name             = var.names.kinesis_stream
  retention_period = 24
  encryption_type  = "KMS"
  kms_key_id       = module.kms.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

# --- Lambdas --------------------------------------------------------------------------------------------------------
# Terraform owns each function's configuration and code location (the content-hashed package key the deploy DAG
# uploads). The deploy DAG publishes a version and moves the `live` alias, which Firehose and the Function URL
# use: a deploy is atomic, and a rollback moves the alias back.
locals {
  lambdas = {
    transformation = {
      name        = var.names.transformation_lambda
      handler     = "recsys_serving.transformation_handler.handler"
      package_key = var.transformation_package_key
      timeout     = 300
      memory      = 1024
    }
    model_inference = {
      name        = var.names.model_inference_lambda
      handler     = "recsys_serving.inference_api.handler"
      package_key = var.model_inference_package_key
      timeout     = 30
      memory      = 1024
    }
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  for_each           = local.lambdas
  name               = "${each.value.name}-role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "lambda" {
  for_each = local.lambdas
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda[each.key].arn}:*"]
  }
  statement {
    sid       = "VectorDbCredentials"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.vector_db_secret_arn]
  }
  # Only what recsys_serving.runtime loads: the pointer and the numpy inference bundle (never the pickles).
  statement {
    sid     = "InferenceBundle"
    actions = ["s3:GetObject"]
    resources = [
      "arn:${local.partition}:s3:::${var.names.ml_artifacts_bucket}/latest.json",
      "arn:${local.partition}:s3:::${var.names.ml_artifacts_bucket}/versions/*/model/inference_bundle.npz",
      "arn:${local.partition}:s3:::${var.names.ml_artifacts_bucket}/versions/*/model/inference_bundle.json",
    ]
  }
  statement {
    sid       = "Decrypt"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = compact(concat([module.kms.arn], var.read_kms_key_arns))
  }
  # The function's network interfaces in the VPC, which Lambda creates and removes as the role (what
  # AWSLambdaVPCAccessExecutionRole grants, without its logs:* on every log group): in the private subnets, with the
  # vector DB's client security group.
  statement {
    sid     = "VpcNetworkInterfaces"
    actions = ["ec2:CreateNetworkInterface"]
    resources = concat(
      ["${local.ec2}:network-interface/*", "${local.ec2}:security-group/${var.vector_db_client_security_group_id}"],
      [for subnet in var.private_subnet_ids : "${local.ec2}:subnet/${subnet}"],
    )
  }
  statement {
    sid       = "ManageNetworkInterfaces"
    actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
    resources = ["${local.ec2}:network-interface/*"]
  }
  statement {
    sid       = "DescribeNetwork"
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.lambdas
  name     = "${each.value.name}-least-privilege"
  role     = aws_iam_role.lambda[each.key].id
  policy   = data.aws_iam_policy_document.lambda[each.key].json
}

# Active tracing needs the function's role to write segments to X-Ray.
resource "aws_iam_role_policy_attachment" "lambda_xray" {
  for_each   = local.lambdas
  role       = aws_iam_role.lambda[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_cloudwatch_log_group" "lambda" {
  for_each          = local.lambdas
  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.arn
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Firehose invokes the processor synchronously and retries; the API is synchronous too.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile per account; packages are content-hashed in S3.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is a variable; its default (unreserved) fits a new account's quota of 10.
  for_each                       = local.lambdas
  function_name                  = each.value.name
  role                           = aws_iam_role.lambda[each.key].arn
  runtime                        = "python3.11"
  architectures                  = ["x86_64"]
  handler                        = each.value.handler
  s3_bucket                      = var.lambda_packages_bucket
  s3_key                         = each.value.package_key
  timeout                        = each.value.timeout
  memory_size                    = each.value.memory
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = module.kms.arn
  publish                        = false

  environment {
    variables = {
      VECTOR_DB_SECRET_ARN = var.vector_db_secret_arn
      VECTOR_DB_HOST       = var.vector_db_host
      VECTOR_DB_PORT       = tostring(var.vector_db_port)
      VECTOR_DB_NAME       = var.vector_db_name
      # TLS with the server certificate verified against the CA bundle packaged with the code
      # (recsys.streaming.packaging.CA_ARCNAME: the RDS bundle in AWS)
      VECTOR_DB_SSLMODE     = var.vector_db_sslmode
      VECTOR_DB_SSLROOTCERT = "certs/vector-db-ca.pem"
      ML_ARTIFACTS_BUCKET   = var.names.ml_artifacts_bucket
      MODEL_VERSION         = var.model_version
    }
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [var.vector_db_client_security_group_id]
  }

  tracing_config {
    mode = "Active"
  }

  lifecycle {
    precondition {
      condition     = length(distinct([for subnet in data.aws_subnet.private : subnet.availability_zone])) >= 2
      error_message = "private_subnet_ids must span at least two availability zones (the vector DB's subnet group needs two; Lambda runs a VPC function in each subnet given)."
    }
  }

  # the role must be able to create the function's ENIs (Lambda checks it on create) and write its traces before
  # the function exists: no ordering race left to the provider's retries
  depends_on = [
    aws_cloudwatch_log_group.lambda,
    aws_iam_role_policy.lambda,
    aws_iam_role_policy_attachment.lambda_xray,
  ]
}

# `live` starts at $LATEST; from the first deploy on it points at a published version the deploy DAG chose.
resource "aws_lambda_alias" "live" {
  for_each         = local.lambdas
  name             = "live"
  description      = "The version serving traffic (moved by the streaming_recommendations DAG)"
  function_name    = aws_lambda_function.this[each.key].function_name
  function_version = "$LATEST"

  lifecycle {
    ignore_changes = [function_version]
  }
}

resource "aws_lambda_function_url" "model_inference" {
  function_name      = aws_lambda_function.this["model_inference"].function_name
  qualifier          = aws_lambda_alias.live["model_inference"].name
  authorization_type = "AWS_IAM"
}

# --- Firehose -------------------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "firehose_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${var.names.delivery_stream}-role"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid       = "ReadStream"
    actions   = ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.activity.arn]
  }
  statement {
    sid       = "WriteRecommendations"
    actions   = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"]
    resources = [module.recommendations.arn, "${module.recommendations.arn}/*"]
  }
  statement {
    sid       = "InvokeProcessor"
    actions   = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
    resources = [aws_lambda_function.this["transformation"].arn, "${aws_lambda_function.this["transformation"].arn}:*"]
  }
  statement {
    sid       = "Encryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.kms.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:*"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "${var.names.delivery_stream}-least-privilege"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_cloudwatch_log_group" "firehose" {
  name              = "/aws/kinesisfirehose/${var.names.delivery_stream}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.arn
}

resource "aws_cloudwatch_log_stream" "firehose" {
  name           = "DestinationDelivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

resource "aws_kinesis_firehose_delivery_stream" "this" {
  #checkov:skip=CKV_AWS_240:With a Kinesis stream source, encryption at rest is the stream's (KMS) and the bucket's.
  #checkov:skip=CKV_AWS_241:With a Kinesis stream source, encryption at rest is the stream's (KMS) and the bucket's.
  name        = var.names.delivery_stream
  destination = "extended_s3"

  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.activity.arn
    role_arn           = aws_iam_role.firehose.arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = module.recommendations.arn
    prefix              = "!{timestamp:yyyy/MM/dd/HH}/"
    error_output_prefix = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
    buffering_size      = var.buffering_size_mb
    buffering_interval  = var.buffering_interval_seconds
    kms_key_arn         = module.kms.arn

    processing_configuration {
      enabled = true
      processors {
        type = "Lambda"
        # Only non-default parameters: the provider does not keep defaults in state (a diff on every plan).
        parameters {
          parameter_name  = "LambdaArn"
          parameter_value = aws_lambda_alias.live["transformation"].arn
        }
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose.name
    }
  }

  # Firehose checks its role's permissions when it creates the stream
  depends_on = [aws_iam_role_policy.firehose]
}

# Delivery smoke tests (the deploy DAG): the same processor alias, role, bucket and key as the production stream,
# but a DirectPut source and its own prefix, so a deploy check never writes into the production hours. Idle, it
# costs nothing (Firehose bills ingested data).
resource "aws_cloudwatch_log_stream" "smoke" {
  name           = "SmokeTestDelivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

resource "aws_kinesis_firehose_delivery_stream" "smoke" {
  name        = "${var.names.delivery_stream}-smoke"
  destination = "extended_s3"

  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = module.kms.arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = module.recommendations.arn
    prefix              = "smoke-tests/!{timestamp:yyyy/MM/dd/HH}/"
    error_output_prefix = "smoke-tests/errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
    buffering_size      = 1
    buffering_interval  = min(var.buffering_interval_seconds, 60)
    kms_key_arn         = module.kms.arn

    processing_configuration {
      enabled = true
      processors {
        type = "Lambda"
        parameters {
          parameter_name  = "LambdaArn"
          parameter_value = aws_lambda_alias.live["transformation"].arn
        }
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.smoke.name
    }
  }

  # Firehose checks its role's permissions when it creates the stream
  depends_on = [aws_iam_role_policy.firehose]
}
