variable "source_db_host" {
  description = "Host name of the MySQL source (the RDS endpoint)."
  type        = string
}

variable "source_db_port" {
  description = "Port of the MySQL source."
  type        = number
  default     = 3306

  validation {
    condition     = var.source_db_port > 0 && var.source_db_port < 65536
    error_message = "source_db_port must be a TCP port."
  }
}

variable "source_db_name" {
  description = "Database of the MySQL source."
  type        = string
  default     = "classicmodels"
}

variable "source_db_secret_arn" {
  description = "Secrets Manager ARN of the source credentials; the password itself never passes through Terraform."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:", var.source_db_secret_arn))
    error_message = "source_db_secret_arn must be a Secrets Manager ARN."
  }
}

variable "source_db_security_group_id" {
  description = "Security group of the source database; Glue's security group is admitted to it."
  type        = string
}

variable "glue_version" {
  description = "Glue version of the job (4.0 or newer)."
  type        = string
  default     = "4.0"

  validation {
    condition     = contains(["4.0", "5.0"], var.glue_version)
    error_message = "glue_version must be 4.0 or 5.0."
  }
}

variable "glue_worker_type" {
  description = "Glue worker type."
  type        = string
  default     = "G.1X"
}

variable "glue_number_of_workers" {
  description = "Glue workers per run."
  type        = number
  default     = 2

  validation {
    condition     = var.glue_number_of_workers >= 2
    error_message = "Glue needs at least 2 workers."
  }
}
