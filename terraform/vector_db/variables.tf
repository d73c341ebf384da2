variable "vector_db_client_security_group_ids" {
  description = "Security groups admitted to PostgreSQL besides the module's client group (e.g. Airflow workers)."
  type        = list(string)
  default     = []
}

variable "vector_db_engine_version" {
  description = "RDS PostgreSQL engine version with pgvector (>= 15.2)."
  type        = string
  default     = "16.8"

  validation {
    condition     = tonumber(split(".", var.vector_db_engine_version)[0]) >= 15
    error_message = "pgvector on RDS needs PostgreSQL 15.2 or newer."
  }
}

variable "vector_db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t3.micro"
}

variable "vector_db_allocated_storage" {
  description = "Storage in GiB (autoscaling up to 5x)."
  type        = number
  default     = 20

  validation {
    condition     = var.vector_db_allocated_storage >= 20
    error_message = "gp3 storage starts at 20 GiB."
  }
}

variable "vector_db_multi_az" {
  description = "Run a Multi-AZ standby."
  type        = bool
  default     = false
}

variable "vector_db_deletion_protection" {
  description = "Protect the database from deletion; set false only to tear down."
  type        = bool
  default     = true
}
