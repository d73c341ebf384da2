variable "names" {
  description = "The platform's resource names (terraform/shared/names.tf)."
  type        = map(string)
}

variable "project_prefix" {
  description = "Prefix of every resource name: the policy grants only on names that start with it."
  type        = string
}

variable "region" {
  description = "AWS region of the platform."
  type        = string
}

variable "account_id" {
  description = "The account the platform deploys into."
  type        = string
}

variable "partition" {
  description = "The AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
}

variable "terraform_state_bucket" {
  description = "The bucket of backend.hcl, holding each root's state (<root>/terraform.tfstate) and lock file."
  type        = string
}

variable "vpc_id" {
  description = "The platform's VPC: security groups are created and changed only in it."
  type        = string
}

variable "source_db_security_group_id" {
  description = "The MySQL source's security group: the etl root adds (and on destroy removes) the rule admitting Glue."
  type        = string
}

variable "workers_role_name" {
  description = "An existing role of the Airflow workers (MWAA execution role, Astro, self-managed) to attach the policies to; empty: the module creates one."
  type        = string
}

variable "workers_trusted_services" {
  description = "Service principals that may assume the role the module creates (MWAA: airflow.amazonaws.com and airflow-env.amazonaws.com; ECS: ecs-tasks.amazonaws.com; EC2: ec2.amazonaws.com)."
  type        = list(string)
}

variable "workers_trusted_role_arns" {
  description = "Roles (ARNs) that may assume the role the module creates, e.g. a self-managed Airflow's instance role."
  type        = list(string)
}
