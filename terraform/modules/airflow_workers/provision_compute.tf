# What Terraform needs for the roots' compute: the three service roles (and passing each only to its service), the
# Glue job, connection, security configuration and catalog (the streaming resources: provision_streaming.tf).
locals {
  roles = {
    glue     = { arn = "${local.arn}:iam::${var.account_id}:role/${var.names.glue_role}", service = "glue.amazonaws.com" }
    lambda   = { arn = "${local.arn}:iam::${var.account_id}:role/${var.project_prefix}-*-role", service = "lambda.amazonaws.com" }
    firehose = { arn = "${local.arn}:iam::${var.account_id}:role/${var.names.delivery_stream}-role", service = "firehose.amazonaws.com" }
  }
  role_arns        = [for role in local.roles : role.arn]
  managed_policies = ["${local.arn}:iam::aws:policy/AWSXRayDaemonWriteAccess"]
  # attached by earlier versions of the streaming root (its inline ENI statements replace it): an upgrade detaches it
  retired_managed_policies = ["${local.arn}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"]
  glue                     = "${local.arn}:glue:${local.regional}"
  glue_database            = var.names.glue_database
  streams = [
    "${local.arn}:firehose:${local.regional}:deliverystream/${var.names.delivery_stream}",
    "${local.arn}:firehose:${local.regional}:deliverystream/${var.names.delivery_stream}-smoke",
  ]
}

data "aws_iam_policy_document" "provision_compute" {
  statement {
    sid = "ServiceRoles"
    actions = [
      "iam:CreateRole",
      "iam:GetRole",
      "iam:ListRolePolicies",
      "iam:ListAttachedRolePolicies",
      "iam:PutRolePolicy",
      "iam:GetRolePolicy",
      "iam:TagRole",
    ]
    resources = local.role_arns
  }

  statement {
    sid = "ServiceRolesLifecycle"
    actions = [
      "iam:DeleteRole",
      "iam:DeleteRolePolicy",
      "iam:UntagRole",
      "iam:ListInstanceProfilesForRole",
      "iam:UpdateAssumeRolePolicy",
    ]
    resources = local.role_arns
  }

  # only the AWS managed policy the Lambda roles use
  statement {
    sid       = "LambdaRoleManagedPolicies"
    actions   = ["iam:AttachRolePolicy"]
    resources = [local.roles.lambda.arn]
    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = local.managed_policies
    }
  }

  statement {
    sid       = "LambdaRoleManagedPoliciesLifecycle"
    actions   = ["iam:DetachRolePolicy"]
    resources = [local.roles.lambda.arn]
    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = concat(local.managed_policies, local.retired_managed_policies)
    }
  }

  dynamic "statement" {
    for_each = local.roles
    content {
      sid       = "Pass${title(statement.key)}Role"
      actions   = ["iam:PassRole"]
      resources = [statement.value.arn]
      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = [statement.value.service]
      }
    }
  }

  # RDS creates its service-linked role the first time an account launches an instance
  statement {
    sid       = "RdsServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["${local.arn}:iam::${var.account_id}:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["rds.amazonaws.com"]
    }
  }

  statement {
    sid = "GlueJobAndConnection"
    actions = [
      "glue:CreateJob",
      "glue:GetJob",
      "glue:CreateConnection",
      "glue:GetConnection",
      "glue:GetTags",
    ]
    resources = [
      "${local.glue}:job/${var.names.glue_job}",
      "${local.glue}:catalog",
      "${local.glue}:connection/${var.names.glue_job}-source",
    ]
  }

  statement {
    sid = "GlueCatalog"
    actions = [
      "glue:CreateDatabase",
      "glue:GetDatabase",
      "glue:CreateTable",
      "glue:GetTable",
      "glue:GetPartitionIndexes",
      "glue:GetTags",
    ]
    resources = [
      "${local.glue}:catalog",
      "${local.glue}:database/${local.glue_database}",
      "${local.glue}:table/${local.glue_database}/*",
    ]
  }

  # security configurations have no resource-level permissions
  statement {
    sid       = "GlueSecurityConfiguration"
    actions   = ["glue:CreateSecurityConfiguration", "glue:GetSecurityConfiguration"]
    resources = ["*"]
  }

  statement {
    sid       = "GlueSecurityConfigurationLifecycle"
    actions   = ["glue:DeleteSecurityConfiguration"]
    resources = ["*"]
  }

  statement {
    sid = "GlueLifecycle"
    actions = [
      "glue:DeleteJob",
      "glue:DeleteConnection",
      "glue:DeleteDatabase",
      "glue:DeleteTable",
      "glue:UntagResource",
      "glue:UpdateJob",
      "glue:UpdateConnection",
      "glue:TagResource",
      "glue:UpdateDatabase",
      "glue:UpdateTable",
    ]
    resources = [
      "${local.glue}:job/${var.names.glue_job}",
      "${local.glue}:catalog",
      "${local.glue}:connection/${var.names.glue_job}-source",
      "${local.glue}:database/${local.glue_database}",
      "${local.glue}:table/${local.glue_database}/*",
      "${local.glue}:userDefinedFunction/${local.glue_database}/*",
    ]
  }
}
