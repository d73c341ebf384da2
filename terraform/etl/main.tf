# Root of the batch training-data pipeline: `terraform/etl`, state key etl/terraform.tfstate.
module "etl" {
  source = "../modules/etl"

  names                       = local.names
  region                      = var.region
  account_id                  = local.account_id
  vpc_id                      = var.vpc_id
  private_subnet_ids          = var.private_subnet_ids
  source_db_host              = var.source_db_host
  source_db_port              = var.source_db_port
  source_db_name              = var.source_db_name
  source_db_secret_arn        = var.source_db_secret_arn
  source_db_security_group_id = var.source_db_security_group_id
  glue_script_key             = "glue/ratings_training_job.py"
  glue_version                = var.glue_version
  worker_type                 = var.glue_worker_type
  number_of_workers           = var.glue_number_of_workers
}
