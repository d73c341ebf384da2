# What Terraform needs for the streaming root's compute: the two Lambdas with their aliases and function URL, the
# Kinesis stream and the two Firehose delivery streams (apart from provision_compute.tf: a managed policy holds at
# most 6,144 characters).
data "aws_iam_policy_document" "provision_streaming" {
  statement {
    sid = "Functions"
    actions = [
      "lambda:CreateFunction",
      "lambda:GetFunction",
      "lambda:GetFunctionCodeSigningConfig",
      "lambda:GetFunctionConfiguration",
      "lambda:ListVersionsByFunction",
      "lambda:PublishVersion",
      "lambda:CreateAlias",
      "lambda:GetAlias",
      "lambda:UpdateAlias",
      "lambda:CreateFunctionUrlConfig",
      "lambda:GetFunctionUrlConfig",
      "lambda:TagResource",
      "lambda:ListTags",
    ]
    resources = concat(local.functions, [for function in local.functions : "${function}:*"])
  }

  statement {
    sid = "FunctionsLifecycle"
    actions = [
      "lambda:DeleteFunction",
      "lambda:DeleteAlias",
      "lambda:DeleteFunctionUrlConfig",
      "lambda:DeleteFunctionConcurrency",
      "lambda:UntagResource",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
      "lambda:PutFunctionConcurrency",
      "lambda:UpdateFunctionUrlConfig",
    ]
    resources = concat(local.functions, [for function in local.functions : "${function}:*"])
  }

  # the functions' environment is encrypted with the delivery-stream key: Lambda makes a grant and encrypts as the
  # caller when Terraform creates or updates them, and decrypts when the provider reads them back
  statement {
    sid       = "FunctionsUseTheDeliveryStreamKey"
    actions   = ["kms:CreateGrant", "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${var.names.delivery_stream}"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid = "ActivityStream"
    actions = [
      "kinesis:CreateStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:ListTagsForStream",
      "kinesis:IncreaseStreamRetentionPeriod",
      "kinesis:StartStreamEncryption",
      "kinesis:AddTagsToStream",
    ]
    resources = ["${local.arn}:kinesis:${local.regional}:stream/${var.names.kinesis_stream}"]
  }

  statement {
    sid = "ActivityStreamLifecycle"
    actions = [
      "kinesis:DeleteStream",
      "kinesis:StopStreamEncryption",
      "kinesis:RemoveTagsFromStream",
    ]
    resources = ["${local.arn}:kinesis:${local.regional}:stream/${var.names.kinesis_stream}"]
  }

  # DescribeLimits has no resource: the provider checks the shard quota before it creates a stream
  statement {
    sid       = "KinesisLimits"
    actions   = ["kinesis:DescribeLimits"]
    resources = ["*"]
  }

  statement {
    sid = "DeliveryStreams"
    actions = [
      "firehose:CreateDeliveryStream",
      "firehose:DescribeDeliveryStream",
      "firehose:ListTagsForDeliveryStream",
      "firehose:StartDeliveryStreamEncryption",
      "firehose:TagDeliveryStream",
    ]
    resources = local.streams
  }

  statement {
    sid = "DeliveryStreamsLifecycle"
    actions = [
      "firehose:DeleteDeliveryStream",
      "firehose:UntagDeliveryStream",
      "firehose:StopDeliveryStreamEncryption",
      "firehose:UpdateDestination",
    ]
    resources = local.streams
  }
}
