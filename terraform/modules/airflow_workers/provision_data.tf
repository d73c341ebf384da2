# What Terraform, run by the DAGs' provisioning tasks, needs to create, read, update and destroy the roots' storage:
# the four buckets, the three KMS keys and their aliases, the log groups, the vector DB's role secrets.
# Statements whose Sid ends in "Lifecycle" hold actions only an update or a destroy calls.
locals {
  bucket_arns = [for bucket in local.buckets : "${local.arn}:s3:::${bucket}"]
  project_tag = { test = "StringEquals", variable = "aws:ResourceTag/Project", values = [var.project_prefix] }
  log_groups = [
    "${local.arn}:logs:${local.regional}:log-group:/aws/lambda/${var.project_prefix}-*",
    "${local.arn}:logs:${local.regional}:log-group:/aws/kinesisfirehose/${var.project_prefix}-*",
  ]
}

data "aws_iam_policy_document" "provision_data" {
  statement {
    sid = "Buckets"
    actions = [
      "s3:CreateBucket",
      "s3:ListBucket",
      "s3:GetBucketAcl",
      "s3:GetBucketCORS",
      "s3:GetBucketLogging",
      "s3:GetBucketObjectLockConfiguration",
      "s3:GetBucketOwnershipControls",
      "s3:GetBucketPolicy",
      "s3:GetBucketPublicAccessBlock",
      "s3:GetBucketRequestPayment",
      "s3:GetBucketTagging",
      "s3:GetBucketVersioning",
      "s3:GetBucketWebsite",
      "s3:GetAccelerateConfiguration",
      "s3:GetEncryptionConfiguration",
      "s3:GetLifecycleConfiguration",
      "s3:GetReplicationConfiguration",
      "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketTagging",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ]
    resources = local.bucket_arns
  }

  statement {
    sid = "BucketsLifecycle"
    actions = [
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:ListBucketVersions",
    ]
    resources = local.bucket_arns
  }

  # the Glue job's source CA (aws_s3_object.source_ca), read back with its tags; a destroy deletes it
  statement {
    sid       = "ScriptsBucketObjects"
    actions   = ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"]
    resources = ["${local.arn}:s3:::${var.names.scripts_bucket}/glue/*"]
  }

  # a destroy empties the buckets first (force_destroy is off: only what a failed run left behind)
  statement {
    sid       = "BucketObjectsLifecycle"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = [for bucket in local.bucket_arns : "${bucket}/*"]
  }

  # CreateKey has no resource; the key must carry the platform's Project tag (the provider's default tags)
  statement {
    sid       = "CreateKeys"
    actions   = ["kms:CreateKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Project"
      values   = [var.project_prefix]
    }
  }

  # CreateKey with tags: AWS authorizes kms:TagResource too, before the key (and so its tags) exists
  statement {
    sid       = "TagKeysOnCreate"
    actions   = ["kms:TagResource"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Project"
      values   = [var.project_prefix]
    }
  }

  statement {
    sid = "ManageKeys"
    actions = [
      "kms:DescribeKey",
      "kms:EnableKeyRotation",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListResourceTags",
      "kms:CreateAlias",
    ]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = local.project_tag.test
      variable = local.project_tag.variable
      values   = local.project_tag.values
    }
  }

  statement {
    sid = "ManageKeysLifecycle"
    actions = [
      "kms:ScheduleKeyDeletion",
      "kms:DisableKeyRotation",
      "kms:PutKeyPolicy",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateKeyDescription",
      "kms:UpdateAlias",
      "kms:DeleteAlias",
    ]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = local.project_tag.test
      variable = local.project_tag.variable
      values   = local.project_tag.values
    }
  }

  # an alias is authorized on the alias and on its key (the key: ManageKeys)
  statement {
    sid       = "KeyAliases"
    actions   = ["kms:CreateAlias"]
    resources = ["${local.arn}:kms:${local.regional}:alias/${var.project_prefix}-*"]
  }

  statement {
    sid       = "KeyAliasesLifecycle"
    actions   = ["kms:UpdateAlias", "kms:DeleteAlias"]
    resources = ["${local.arn}:kms:${local.regional}:alias/${var.project_prefix}-*"]
  }

  # ListAliases has no resource: the provider reads an alias through it
  statement {
    sid       = "ListKeyAliases"
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }

  statement {
    sid = "LogGroups"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:PutRetentionPolicy",
      "logs:ListTagsForResource",
      "logs:DescribeLogStreams",
      "logs:TagResource",
    ]
    resources = concat(local.log_groups, [for group in local.log_groups : "${group}:log-stream:*"])
  }

  statement {
    sid = "LogGroupsLifecycle"
    actions = [
      "logs:DeleteLogGroup",
      "logs:DeleteLogStream",
      "logs:DeleteRetentionPolicy",
      "logs:DisassociateKmsKey",
      "logs:UntagResource",
      "logs:UntagLogGroup",
      "logs:AssociateKmsKey",
    ]
    resources = concat(local.log_groups, [for group in local.log_groups : "${group}:log-stream:*"])
  }

  # DescribeLogGroups is authorized on every log group of the region (log-group:*)
  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["${local.arn}:logs:${local.regional}:log-group:*"]
  }

  statement {
    sid = "RoleSecrets"
    actions = [
      "secretsmanager:CreateSecret",
      "secretsmanager:DescribeSecret",
      "secretsmanager:GetResourcePolicy",
      "secretsmanager:TagResource",
    ]
    resources = [for name in ["vector_db_loader", "vector_db_reader"] : "${local.arn}:secretsmanager:${local.regional}:secret:${var.names[name]}-*"]
  }

  statement {
    sid = "RoleSecretsLifecycle"
    actions = [
      "secretsmanager:DeleteSecret",
      "secretsmanager:UntagResource",
      "secretsmanager:UpdateSecret",
    ]
    resources = [for name in ["vector_db_loader", "vector_db_reader"] : "${local.arn}:secretsmanager:${local.regional}:secret:${var.names[name]}-*"]
  }

}
