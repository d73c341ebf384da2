variable "transformation_package_key" {
  description = "Key of the transformation Lambda zip in the scripts bucket (set by the deploy DAG)."
  type        = string

  validation {
    condition     = can(regex("^lambda/.+\\.zip$", var.transformation_package_key))
    error_message = "transformation_package_key must be lambda/<name>.zip."
  }
}

variable "model_inference_package_key" {
  description = "Key of the model-inference Lambda zip in the scripts bucket (set by the deploy DAG)."
  type        = string

  validation {
    condition     = can(regex("^lambda/.+\\.zip$", var.model_inference_package_key))
    error_message = "model_inference_package_key must be lambda/<name>.zip."
  }
}

variable "model_version" {
  description = "Model version the Lambdas serve (set by the deploy DAG from ml-artifacts)."
  type        = string
  default     = "latest"
}

variable "buffering_size_mb" {
  description = "Firehose S3 buffer size in MiB (1-128)."
  type        = number
  default     = 5

  validation {
    condition     = var.buffering_size_mb >= 1 && var.buffering_size_mb <= 128
    error_message = "buffering_size_mb must be 1-128."
  }
}

variable "buffering_interval_seconds" {
  description = "Firehose S3 buffer interval in seconds (0-900)."
  type        = number
  default     = 60

  validation {
    condition     = var.buffering_interval_seconds >= 0 && var.buffering_interval_seconds <= 900
    error_message = "buffering_interval_seconds must be 0-900."
  }
}

variable "vector_db_sslmode" {
  description = "libpq sslmode of the Lambdas' vector DB connections: verify-full checks the certificate against the CA bundle packaged with the code (the RDS bundle)."
  type        = string
  default     = "verify-full"

  validation {
    condition     = contains(["verify-full", "verify-ca", "require"], var.vector_db_sslmode)
    error_message = "vector_db_sslmode must be verify-full, verify-ca or require (the connection is always encrypted)."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrent executions per Lambda; -1 (default) leaves them unreserved: a new account's whole quota is 10 and reservations must leave 10 unreserved."
  type        = number
  default     = -1

  validation {
    condition     = var.lambda_reserved_concurrency == -1 || var.lambda_reserved_concurrency >= 1
    error_message = "lambda_reserved_concurrency must be -1 (unreserved) or at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the Lambda and Firehose log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value."
  }
}

variable "error_retention_days" {
  description = "Days Firehose error output under errors/ is kept."
  type        = number
  default     = 14
}
