# The Airflow workers' permissions: everything the DAGs do (runtime.tf) and everything Terraform does when the DAGs'
# provisioning tasks apply or destroy the three roots (provision_*.tf), as five customer managed policies (a managed
# policy holds at most 6,144 characters), attached to the role the module creates or to an existing worker role.
locals {
  documents = {
    runtime             = data.aws_iam_policy_document.runtime.json
    provision-data      = data.aws_iam_policy_document.provision_data.json
    provision-compute   = data.aws_iam_policy_document.provision_compute.json
    provision-streaming = data.aws_iam_policy_document.provision_streaming.json
    provision-network   = data.aws_iam_policy_document.provision_network.json
  }
  create_role = var.workers_role_name == ""
  role_name   = local.create_role ? aws_iam_role.workers[0].name : var.workers_role_name
}

data "aws_iam_policy_document" "workers_assume" {
  # a service (MWAA, ECS, EC2) assumes it on behalf of this account only
  dynamic "statement" {
    for_each = length(var.workers_trusted_services) > 0 ? [1] : []
    content {
      sid     = "TrustedServices"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = var.workers_trusted_services
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [var.account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.workers_trusted_role_arns) > 0 ? [1] : []
    content {
      sid     = "TrustedRoles"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "AWS"
        identifiers = var.workers_trusted_role_arns
      }
    }
  }
}

resource "aws_iam_role" "workers" {
  count              = local.create_role ? 1 : 0
  name               = "${var.project_prefix}-airflow-workers"
  description        = "Airflow workers of ${var.project_prefix}: the DAGs and the Terraform roots they apply"
  assume_role_policy = data.aws_iam_policy_document.workers_assume.json
}

resource "aws_iam_policy" "workers" {
  for_each    = local.documents
  name        = "${var.project_prefix}-airflow-workers-${each.key}"
  description = "Airflow workers of ${var.project_prefix}: ${each.key}"
  policy      = each.value
}

resource "aws_iam_role_policy_attachment" "workers" {
  for_each   = local.documents
  role       = local.role_name
  policy_arn = aws_iam_policy.workers[each.key].arn
}
