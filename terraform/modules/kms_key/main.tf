# A customer-managed KMS key with rotation, usable by the account and the services that encrypt for the pipeline.
variable "alias" {
  description = "Alias name without the alias/ prefix."
  type        = string
}

variable "service_principals" {
  description = "AWS services that encrypt with this key (e.g. logs.us-east-1.amazonaws.com)."
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
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      }],
      length(var.service_principals) == 0 ? [] : [{
        Sid       = "ServicesEncrypt"
        Effect    = "Allow"
        Principal = { Service = var.service_principals }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
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
