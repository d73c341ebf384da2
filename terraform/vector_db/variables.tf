variable "vector_db_client_security_group_ids" {
  description = "Security groups admitted to PostgreSQL besides the module's client group and the Airflow workers' group."
  type        = list(string)
  default     = []
}

variable "vector_db_engine_version" {
  description = "RDS PostgreSQL major version with pgvector (15 or newer); RDS applies minor upgrades."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^[0-9]+$", var.vector_db_engine_version)) && tonumber(var.vector_db_engine_version) >= 15
    error_message = "vector_db_engine_version must be a PostgreSQL major version, 15 or newer (e.g. 16)."
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

variable "vector_db_port" {
  description = "PostgreSQL port."
  type        = number
  default     = 5432

  validation {
    condition     = var.vector_db_port >= 1150 && var.vector_db_port <= 65535
    error_message = "RDS PostgreSQL ports are 1150-65535."
  }
}

variable "vector_db_name" {
  description = "Database holding item_emb and user_emb."
  type        = string
  default     = "postgres"
}

variable "vector_db_master_username" {
  description = "Master user; RDS generates its password into a Secrets Manager secret (never in state)."
  type        = string
  default     = "postgres"
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

variable "vector_db_skip_final_snapshot" {
  description = "Destroy without a final snapshot. Independent of deletion_protection: tearing down keeps a snapshot unless this is set."
  type        = bool
  default     = false
}

variable "vector_db_performance_insights" {
  description = "Enable Performance Insights (the local stack turns it off: its emulator has no such service)."
  type        = bool
  default     = true
}
