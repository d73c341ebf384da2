variable "names" {
  description = "Resource names from the root's locals.names."
  type        = map(string)
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
  description = "Further security groups admitted on 5432 (e.g. the Airflow workers')."
  type        = list(string)
}

variable "engine_version" {
  description = "RDS PostgreSQL version; pgvector is available from 15.2 / 16.1."
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

variable "multi_az" {
  description = "Run a standby in a second AZ."
  type        = bool
}

variable "deletion_protection" {
  description = "Protect the database from deletion (and keep a final snapshot)."
  type        = bool
}
