# Root of the streaming pipeline: `terraform/streaming_inference`, state key streaming_inference/terraform.tfstate.
# It finds the vector DB's secret, key and client security group by their names (applied by terraform/vector_db).
data "aws_secretsmanager_secret" "vector_db" {
  name = local.names.vector_db_secret
}

data "aws_kms_alias" "vector_db" {
  name = "alias/${local.names.vector_db}"
}

data "aws_security_group" "vector_db_clients" {
  name   = "${local.names.vector_db}-clients-sg"
  vpc_id = var.vpc_id
}

module "streaming_inference" {
  source = "../modules/streaming_inference"

  names                              = local.names
  region                             = var.region
  private_subnet_ids                 = var.private_subnet_ids
  vector_db_secret_arn               = data.aws_secretsmanager_secret.vector_db.arn
  vector_db_kms_key_arn              = data.aws_kms_alias.vector_db.target_key_arn
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
