variable "names" {
  description = "Resource names from the root's locals.names (one source of truth with the DAGs)."
  type        = map(string)
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "account_id" {
  description = "AWS account id."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the source database and the Glue connection."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets; Glue's connection uses the first."
  type        = list(string)
}

variable "source_db_host" {
  description = "Host name of the MySQL source (RDS endpoint)."
  type        = string
}

variable "source_db_port" {
  description = "Port of the MySQL source."
  type        = number
}

variable "source_db_name" {
  description = "Database of the MySQL source."
  type        = string
}

variable "source_db_secret_arn" {
  description = "Secrets Manager ARN of the source credentials (username, password)."
  type        = string
}

variable "source_db_ssl_ca" {
  description = "Path of the trust store holding the source's CA, uploaded beside the Glue script and shipped to the job with --extra-files (empty: TLS without verification)."
  type        = string
}

variable "source_db_security_group_id" {
  description = "Security group of the source database; Glue is admitted to it."
  type        = string
}

variable "glue_script_key" {
  description = "Key of the Glue script in the scripts bucket (published by the batch DAG)."
  type        = string
}

variable "glue_version" {
  description = "Glue version of the job."
  type        = string
}

variable "timeout_minutes" {
  description = "Glue job timeout in minutes."
  type        = number
}

variable "jdbc_partitions" {
  description = "Parallel JDBC reads of the ratings table (the job's default; the DAG may override per run)."
  type        = number
}

variable "training_data_prefix" {
  description = "Folder of the training data in the datalake bucket (ends with /)."
  type        = string
}

variable "catalog_table" {
  description = "Glue Data Catalog table over the training data."
  type        = string
}

variable "customer_number_range" {
  description = "Partition projection range of customerNumber (\"min,max\")."
  type        = string
}

variable "training_columns" {
  description = "The data contract's columns other than the partition column, as Hive types, in order."
  type        = list(object({ name = string, type = string }))
}

variable "worker_type" {
  description = "Glue worker type."
  type        = string
}

variable "number_of_workers" {
  description = "Glue workers per run."
  type        = number
}

variable "airflow_workers_security_group_id" {
  description = "The Airflow workers' security group: the source admits it (the batch DAG's checks read the source)."
  type        = string
}
