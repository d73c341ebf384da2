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
      "lambda:TagResource",
      "lambda:UpdateFunctionUrlConfig",
    ]
    resources = concat(local.functions, [for function in local.functions : "${function}:*"])
  }

  statement {
    sid = "ActivityStream"
    actions = [
      "kinesis:CreateStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:ListTagsForStream",
      "kinesis:IncreaseStreamRetentionPeriod",
      "kinesis:StartStreamEncryption",
    ]
    resources = ["${local.arn}:kinesis:${local.regional}:stream/${var.names.kinesis_stream}"]
  }

  statement {
    sid = "ActivityStreamLifecycle"
    actions = [
      "kinesis:DeleteStream",
      "kinesis:StopStreamEncryption",
      "kinesis:RemoveTagsFromStream",
      "kinesis:AddTagsToStream",
      "kinesis:DecreaseStreamRetentionPeriod",
      "kinesis:UpdateShardCount",
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
      "firehose:TagDeliveryStream",
    ]
    resources = local.streams
  }
}
