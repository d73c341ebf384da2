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
      "lambda:GetFunctionConcurrency",
      "lambda:ListVersionsByFunction",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
      "lambda:PutFunctionConcurrency",
      "lambda:PublishVersion",
      "lambda:ListTags",
      "lambda:TagResource",
      "lambda:CreateAlias",
      "lambda:GetAlias",
      "lambda:UpdateAlias",
      "lambda:CreateFunctionUrlConfig",
      "lambda:GetFunctionUrlConfig",
      "lambda:UpdateFunctionUrlConfig",
      "lambda:GetPolicy",
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
    ]
    resources = concat(local.functions, [for function in local.functions : "${function}:*"])
  }

  statement {
    sid = "ActivityStream"
    actions = [
      "kinesis:CreateStream",
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:ListTagsForStream",
      "kinesis:AddTagsToStream",
      "kinesis:IncreaseStreamRetentionPeriod",
      "kinesis:DecreaseStreamRetentionPeriod",
      "kinesis:StartStreamEncryption",
      "kinesis:UpdateShardCount",
    ]
    resources = ["${local.arn}:kinesis:${local.regional}:stream/${var.names.kinesis_stream}"]
  }

  statement {
    sid       = "ActivityStreamLifecycle"
    actions   = ["kinesis:DeleteStream", "kinesis:StopStreamEncryption", "kinesis:RemoveTagsFromStream"]
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
      "firehose:UpdateDestination",
      "firehose:ListTagsForDeliveryStream",
      "firehose:TagDeliveryStream",
      "firehose:StartDeliveryStreamEncryption",
    ]
    resources = local.streams
  }

  statement {
    sid       = "DeliveryStreamsLifecycle"
    actions   = ["firehose:DeleteDeliveryStream", "firehose:UntagDeliveryStream", "firehose:StopDeliveryStreamEncryption"]
    resources = local.streams
  }
}
