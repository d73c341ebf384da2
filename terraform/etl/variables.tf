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

variable "source_db_ssl_ca" {
  description = "Path, on the machine running Terraform (the Airflow workers), of a trust store holding the source's CA: JKS (or PKCS12, .p12) for MySQL Connector/J in Glue (keytool -importcert of each certificate of the RDS bundle), a PEM file on the local stack. The root uploads it beside the Glue script and the job gets it with --extra-files; the read then verifies the certificate (sslMode=VERIFY_CA). Empty: the read is encrypted (sslMode=REQUIRED) without verification."
  type        = string
  default     = ""

  validation {
    condition     = var.source_db_ssl_ca == "" || !startswith(var.source_db_ssl_ca, "s3://")
    error_message = "source_db_ssl_ca is a file path on the machine running Terraform (the root uploads it), not an s3:// URL: Connector/J cannot open s3:."
  }
}

variable "source_db_security_group_id" {
  description = "Security group of the source database; Glue's security group is admitted to it."
  type        = string
}

variable "glue_version" {
  description = "Glue version of the job: 5.1 (Spark 3.5.6, Python 3.11, Java 17), the runtime the local stack runs (recsys.config.GLUE_VERSION)."
  type        = string
  default     = "5.1"

  validation {
    condition     = var.glue_version == "5.1"
    error_message = "glue_version must be 5.1: the job script targets Python 3.11 and Spark 3.5, and the local stack tests that runtime only."
  }
}

variable "glue_timeout_minutes" {
  description = "Glue job timeout in minutes."
  type        = number
  default     = 120

  validation {
    condition     = var.glue_timeout_minutes >= 1 && var.glue_timeout_minutes <= 2880
    error_message = "glue_timeout_minutes must be 1-2880."
  }
}

variable "glue_jdbc_partitions" {
  description = "Parallel JDBC reads of the ratings table (the DAG's jdbc_partitions Param overrides it per run)."
  type        = number
  default     = 4

  validation {
    condition     = var.glue_jdbc_partitions >= 1 && var.glue_jdbc_partitions <= 64
    error_message = "glue_jdbc_partitions must be 1-64."
  }
}

variable "customer_number_range" {
  description = "Partition projection range of customerNumber in the catalog table (\"min,max\")."
  type        = string
  default     = "0,999999"

  validation {
    condition     = can(regex("^[0-9]+,[0-9]+$", var.customer_number_range))
    error_message = "customer_number_range must be \"min,max\"."
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
