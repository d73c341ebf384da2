variable "names" {
  description = "Resource names from the root's locals.names."
  type        = map(string)
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the DB subnet group."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Further security groups admitted to the database (e.g. the Airflow workers')."
  type        = list(string)
}

variable "engine_version" {
  description = "RDS PostgreSQL major version (pgvector from 15.2 / 16.1); RDS applies minor upgrades."
  type        = string
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage" {
  description = "Storage in GiB."
  type        = number
}

variable "port" {
  description = "PostgreSQL port."
  type        = number
}

variable "database_name" {
  description = "Database holding item_emb and user_emb."
  type        = string
}

variable "master_username" {
  description = "Master user name; RDS generates and rotates its password in Secrets Manager."
  type        = string
}

variable "multi_az" {
  description = "Run a standby in a second AZ."
  type        = bool
}

variable "deletion_protection" {
  description = "Protect the database from deletion."
  type        = bool
}

variable "skip_final_snapshot" {
  description = "Destroy without a final snapshot (throwaway environments only)."
  type        = bool
}

variable "performance_insights" {
  description = "Enable Performance Insights (encrypted with the module's key)."
  type        = bool
}

variable "workers_security_group_id" {
  description = "The Airflow workers' security group: the database admits it (role setup, the load, the checks)."
  type        = string
}
