# What Terraform needs for the roots' network and database: the platform's security groups and their rules (in the
# platform's VPC, tagged Project = prefix), the rule it adds to the MySQL source's group, the vector DB instance, its
# subnet group and the grants RDS makes on the vector DB key as the caller.
locals {
  ec2              = "${local.arn}:ec2:${local.regional}"
  source_sg        = "${local.ec2}:security-group/${var.source_db_security_group_id}"
  rds              = "${local.arn}:rds:${local.regional}"
  vector_db_subnet = "${local.rds}:subgrp:${var.names.vector_db}-subnets"
}

data "aws_iam_policy_document" "provision_network" {
  # Describe* have no resource-level permissions (the Lambda service also describes the VPC as the caller)
  statement {
    sid = "DescribeNetwork"
    actions = [
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSecurityGroupRules",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
      "ec2:DescribeNetworkInterfaces",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "CreateSecurityGroupsInThePlatformVpc"
    actions   = ["ec2:CreateSecurityGroup"]
    resources = ["${local.ec2}:vpc/${var.vpc_id}"]
  }

  statement {
    sid       = "CreateTaggedSecurityGroups"
    actions   = ["ec2:CreateSecurityGroup"]
    resources = ["${local.ec2}:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Project"
      values   = [var.project_prefix]
    }
  }

  # tags only as part of creating a group or a rule
  statement {
    sid       = "TagOnCreate"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2}:security-group/*", "${local.ec2}:security-group-rule/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"]
    }
  }

  statement {
    sid = "PlatformSecurityGroupRules"
    actions = [
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:RevokeSecurityGroupEgress",
    ]
    resources = ["${local.ec2}:security-group/*", "${local.ec2}:security-group-rule/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Project"
      values   = [var.project_prefix]
    }
  }

  statement {
    sid = "PlatformSecurityGroupRulesLifecycle"
    actions = [
      "ec2:RevokeSecurityGroupIngress",
      "ec2:ModifySecurityGroupRules",
      "ec2:CreateTags",
      "ec2:DeleteTags",
    ]
    resources = ["${local.ec2}:security-group/*", "${local.ec2}:security-group-rule/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Project"
      values   = [var.project_prefix]
    }
  }

  # the etl root's rules in the source's group (Glue, the workers), which the operator owns (not tagged by us)
  statement {
    sid       = "SourceGroupAdmitsThePlatform"
    actions   = ["ec2:AuthorizeSecurityGroupIngress"]
    resources = [local.source_sg, "${local.ec2}:security-group-rule/*"]
  }

  statement {
    sid = "SourceGroupAdmitsThePlatformLifecycle"
    actions = [
      "ec2:RevokeSecurityGroupIngress",
      "ec2:ModifySecurityGroupRules",
    ]
    resources = [local.source_sg, "${local.ec2}:security-group-rule/*"]
  }

  statement {
    sid       = "SecurityGroupsLifecycle"
    actions   = ["ec2:DeleteSecurityGroup"]
    resources = ["${local.ec2}:security-group/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Project"
      values   = [var.project_prefix]
    }
  }

  # a destroy of a group still holding a Lambda's network interfaces (Lambda releases them late) detaches and deletes
  # them first
  statement {
    sid       = "LingeringInterfacesLifecycle"
    actions   = ["ec2:DetachNetworkInterface", "ec2:DeleteNetworkInterface"]
    resources = ["${local.ec2}:network-interface/*", "${local.ec2}:instance/*"]
  }

  # the provider reads an instance back by its resource id (a filter), which AWS authorizes on every instance
  statement {
    sid       = "FindDbInstances"
    actions   = ["rds:DescribeDBInstances"]
    resources = ["${local.rds}:db:*"]
  }

  statement {
    sid = "VectorDbInstance"
    actions = [
      "rds:CreateDBInstance",
      "rds:DescribeDBInstances",
      "rds:ListTagsForResource",
      "rds:CreateDBSubnetGroup",
      "rds:DescribeDBSubnetGroups",
      "rds:AddTagsToResource",
    ]
    resources = [
      "${local.rds}:db:${var.names.vector_db}",
      local.vector_db_subnet,
      "${local.rds}:og:default:postgres-*",
      "${local.rds}:pg:default.postgres*",
      "${local.rds}:secgrp:*",
    ]
  }

  statement {
    sid = "VectorDbLifecycle"
    actions = [
      "rds:DeleteDBInstance",
      "rds:DeleteDBSubnetGroup",
      "rds:CreateDBSnapshot",
      "rds:RemoveTagsFromResource",
      "rds:ModifyDBInstance",
      "rds:ModifyDBSubnetGroup",
    ]
    resources = ["${local.rds}:db:${var.names.vector_db}", local.vector_db_subnet, "${local.rds}:snapshot:${var.names.vector_db}-final"]
  }

  # manage_master_user_password: RDS creates the master secret (rds!db-...) as the caller
  statement {
    sid       = "RdsManagedMasterSecret"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:TagResource"]
    resources = ["${local.arn}:secretsmanager:${local.regional}:secret:rds!*"]
  }

  # storage, Performance Insights and the master secret are encrypted with the vector DB key: RDS describes it and
  # makes grants on it as the caller
  statement {
    sid       = "RdsUsesTheVectorDbKey"
    actions   = ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${var.names.vector_db}"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${var.region}.amazonaws.com", "secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}
