variable "names" {
  description = "Resource names from the root's locals.names."
  type        = map(string)
}

variable "account_id" {
  description = "AWS account id."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the Lambdas."
  type        = list(string)
}

variable "vector_db_secret_arn" {
  description = "ARN of the vector DB read-only role's secret (the Lambdas read it at cold start)."
  type        = string
}

variable "vector_db_host" {
  description = "Host of the vector DB (the Lambdas' VECTOR_DB_HOST)."
  type        = string
}

variable "vector_db_port" {
  description = "Port of the vector DB."
  type        = number
}

variable "vector_db_name" {
  description = "Database of the vector DB."
  type        = string
}

variable "read_kms_key_arns" {
  description = "Keys the Lambdas decrypt with: the vector DB secret's and the ml-artifacts bucket's."
  type        = list(string)
}

variable "vector_db_client_security_group_id" {
  description = "Security group admitted to the vector DB; the Lambdas join it."
  type        = string
}

variable "lambda_packages_bucket" {
  description = "Bucket the deploy DAG uploads the Lambda zips to."
  type        = string
}

variable "transformation_package_key" {
  description = "Key of the transformation Lambda's zip (content-hashed)."
  type        = string
}

variable "model_inference_package_key" {
  description = "Key of the model-inference Lambda's zip (content-hashed)."
  type        = string
}

variable "model_version" {
  description = "Model version the Lambdas load from ml-artifacts."
  type        = string
}

variable "buffering_size_mb" {
  description = "Firehose buffer size towards S3."
  type        = number
}

variable "buffering_interval_seconds" {
  description = "Firehose buffer interval towards S3."
  type        = number
}

variable "vector_db_sslmode" {
  description = "libpq sslmode of the Lambdas' vector DB connections."
  type        = string
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per Lambda (-1: unreserved)."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the Lambda and Firehose log groups."
  type        = number
}

variable "error_retention_days" {
  description = "Days Firehose error output is kept."
  type        = number
}
