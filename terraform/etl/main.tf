# Root of the batch training-data pipeline: `terraform/etl`, state key etl/terraform.tfstate.
# Applied only by the batch_training_data DAG (the first of the nightly chain, so it also owns the buckets the
# later DAGs use); the others read its outputs.
locals {
  # The data contract without the partition column, as Hive types (recsys.etl.glue_job.TRAINING_SCHEMA; a test
  # holds the two equal).
  training_columns = [
    { name = "city", type = "string" },
    { name = "state", type = "string" },
    { name = "postalCode", type = "string" },
    { name = "country", type = "string" },
    { name = "creditLimit", type = "decimal(10,2)" },
    { name = "productCode", type = "string" },
    { name = "productLine", type = "string" },
    { name = "productScale", type = "string" },
    { name = "quantityInStock", type = "int" },
    { name = "buyPrice", type = "decimal(10,2)" },
    { name = "MSRP", type = "decimal(10,2)" },
    { name = "productRating", type = "int" },
  ]
}

module "etl" {
  source = "../modules/etl"

  names                             = local.names
  region                            = var.region
  account_id                        = local.account_id
  vpc_id                            = var.vpc_id
  private_subnet_ids                = var.private_subnet_ids
  source_db_host                    = var.source_db_host
  source_db_port                    = var.source_db_port
  source_db_name                    = var.source_db_name
  source_db_secret_arn              = var.source_db_secret_arn
  source_db_ssl_ca                  = var.source_db_ssl_ca
  source_db_security_group_id       = var.source_db_security_group_id
  airflow_workers_security_group_id = var.airflow_workers_security_group_id
  glue_script_key                   = "glue/ratings_training_job.py"
  glue_version                      = var.glue_version
  worker_type                       = var.glue_worker_type
  number_of_workers                 = var.glue_number_of_workers
  timeout_minutes                   = var.glue_timeout_minutes
  jdbc_partitions                   = var.glue_jdbc_partitions
  training_data_prefix              = "ratings-ml-training/"
  catalog_table                     = "ratings_ml_training"
  customer_number_range             = var.customer_number_range
  training_columns                  = local.training_columns
}
