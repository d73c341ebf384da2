# A customer-managed KMS key with rotation. The account administers it (AWS's default key policy: IAM policies
# grant its use, so every role gets only what its own policy says); CloudWatch Logs may use it only for the listed
# log groups (the encryption context names the log group, so the grant cannot serve another one).

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
}

variable "alias" {
  description = "Alias name without the alias/ prefix."
  type        = string
}

variable "region" {
  description = "Region of the log groups (CloudWatch Logs' regional service principal)."
  type        = string
}

variable "log_group_arns" {
  description = "ARN patterns (log-group:<name or prefix*>) of the log groups encrypted with this key; empty: none."
  type        = list(string)
  default     = []
}

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "this" {
  description             = "Encryption key for ${var.alias}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      }],
      length(var.log_group_arns) == 0 ? [] : [{
        Sid       = "CloudWatchLogsEncryptsTheseLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = var.log_group_arns }
        }
      }]
    )
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias}"
  target_key_id = aws_kms_key.this.key_id
}

output "arn" {
  description = "Key ARN."
  value       = aws_kms_key.this.arn
}
