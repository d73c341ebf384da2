# Root of the streaming pipeline: `terraform/streaming_inference`, state key streaming_inference/terraform.tfstate.
# Applied only by the streaming_recommendations DAG. It finds what the etl and vector_db roots own (the vector DB,
# its credentials secret and client security group, the ml-artifacts key) by their names.
data "aws_db_instance" "vector_db" {
  db_instance_identifier = local.names.vector_db
}

# The read-only role's credentials (recsys.vectordb.roles): the Lambdas never get the master secret.
data "aws_secretsmanager_secret" "vector_db_reader" {
  name = local.names.vector_db_reader
}

data "aws_kms_alias" "vector_db" {
  name = "alias/${local.names.vector_db}"
}

data "aws_kms_alias" "ml_artifacts" {
  name = "alias/${local.names.glue_job}"
}

data "aws_security_group" "vector_db_clients" {
  name   = "${local.names.vector_db}-clients-sg"
  vpc_id = var.vpc_id
}

module "streaming_inference" {
  source = "../modules/streaming_inference"

  names                              = local.names
  region                             = var.region
  account_id                         = local.account_id
  private_subnet_ids                 = var.private_subnet_ids
  vector_db_secret_arn               = data.aws_secretsmanager_secret.vector_db_reader.arn
  vector_db_host                     = data.aws_db_instance.vector_db.address
  vector_db_port                     = data.aws_db_instance.vector_db.port
  vector_db_name                     = data.aws_db_instance.vector_db.db_name
  vector_db_sslmode                  = var.vector_db_sslmode
  read_kms_key_arns                  = [data.aws_kms_alias.vector_db.target_key_arn, data.aws_kms_alias.ml_artifacts.target_key_arn]
  vector_db_client_security_group_id = data.aws_security_group.vector_db_clients.id
  lambda_packages_bucket             = local.names.scripts_bucket
  transformation_package_key         = var.transformation_package_key
  model_inference_package_key        = var.model_inference_package_key
  model_version                      = var.model_version
  buffering_size_mb                  = var.buffering_size_mb
  buffering_interval_seconds         = var.buffering_interval_seconds
  reserved_concurrency               = var.lambda_reserved_concurrency
  log_retention_days                 = var.log_retention_days
  error_retention_days               = var.error_retention_days
}
