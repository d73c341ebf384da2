variable "project_prefix" {
  description = "Prefix of every resource name (the lab's is de-c1w4). Lower case letters, digits and hyphens."
  type        = string
  default     = "de-c1w4"

  # Bucket names start with the prefix: S3 forbids "--" (and names starting with xn-- or sthree-).
  validation {
    condition = (
      can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.project_prefix))
      && !strcontains(var.project_prefix, "--")
      && !startswith(var.project_prefix, "xn-")
      && !startswith(var.project_prefix, "sthree-")
    )
    error_message = "project_prefix must be 3-22 lower-case letters, digits or single hyphens, start with a letter, and not start with xn- or sthree-."
  }
}

variable "region" {
  description = "AWS region of the platform."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "VPC holding the source database, the vector DB, Glue's network interfaces and the Lambdas."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two, in different AZs) for RDS, Glue and the Lambdas."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2 && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "private_subnet_ids needs at least two subnet ids (subnet-...)."
  }
}

variable "airflow_workers_security_group_id" {
  description = "Security group of the Airflow workers: the MySQL source and the vector DB admit it (the DAGs' checks, loads and smoke tests connect from the workers)."
  type        = string

  validation {
    condition     = can(regex("^sg-[0-9a-f]+$", var.airflow_workers_security_group_id))
    error_message = "airflow_workers_security_group_id must be a security group id (sg-...)."
  }
}
