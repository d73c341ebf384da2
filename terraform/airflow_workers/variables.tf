variable "terraform_state_bucket" {
  description = "The state bucket of backend.hcl: the workers read and write each root's state and lock file in it."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.terraform_state_bucket))
    error_message = "terraform_state_bucket must be a bucket name (backend.hcl's bucket)."
  }
}

variable "source_db_security_group_id" {
  description = "The MySQL source's security group (the etl root adds the rule admitting Glue to it)."
  type        = string

  validation {
    condition     = can(regex("^sg-[0-9a-f]+$", var.source_db_security_group_id))
    error_message = "source_db_security_group_id must be a security group id (sg-...)."
  }
}

variable "workers_role_name" {
  description = "An existing role of the Airflow workers to attach the policies to (MWAA's execution role, Astro's, a self-managed one); empty: this root creates <prefix>-airflow-workers."
  type        = string
  default     = ""
}

variable "workers_trusted_services" {
  description = "Service principals that may assume the role this root creates (MWAA's by default; ECS: ecs-tasks.amazonaws.com; EC2: ec2.amazonaws.com)."
  type        = list(string)
  default     = ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]
}

variable "workers_trusted_role_arns" {
  description = "Roles (ARNs) that may assume the role this root creates, e.g. the instance role of self-managed workers."
  type        = list(string)
  default     = []
}
