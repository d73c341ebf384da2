# The Airflow workers' IAM: applied once by an administrator before the first DAG run (docs/aws-deployment.md,
# step 0), with the same backend.hcl and terraform.tfvars as the pipeline roots. The DAGs never apply this root:
# the workers cannot grant themselves permissions.
data "aws_partition" "current" {}

module "airflow_workers" {
  source                      = "../modules/airflow_workers"
  names                       = local.names
  project_prefix              = var.project_prefix
  region                      = var.region
  account_id                  = local.account_id
  partition                   = data.aws_partition.current.partition
  terraform_state_bucket      = var.terraform_state_bucket
  vpc_id                      = var.vpc_id
  source_db_security_group_id = var.source_db_security_group_id
  workers_role_name           = var.workers_role_name
  workers_trusted_services    = var.workers_trusted_services
  workers_trusted_role_arns   = var.workers_trusted_role_arns
}
