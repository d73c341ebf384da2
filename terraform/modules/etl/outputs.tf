output "datalake_bucket" {
  description = "Datalake bucket (training data under ratings-ml-training/)."
  value       = module.datalake.name
}

output "scripts_bucket" {
  description = "Bucket of the Glue script and Lambda packages."
  value       = module.scripts.name
}

output "ml_artifacts_bucket" {
  description = "Bucket of the model, scalers and embeddings (the model DAG publishes, the others read)."
  value       = module.ml_artifacts.name
}

output "glue_table" {
  description = "Catalog table over the training data (partition projection on customerNumber)."
  value       = aws_glue_catalog_table.training_data.name
}

output "kms_key_arn" {
  description = "Key encrypting the buckets and the Glue job's output."
  value       = module.kms.arn
}

output "glue_job_name" {
  description = "Glue job the batch DAG runs."
  value       = aws_glue_job.this.name
}

output "glue_script_s3_url" {
  description = "Where the batch DAG publishes the Glue script."
  value       = aws_glue_job.this.command[0].script_location
}

output "glue_database" {
  description = "Glue Data Catalog database of the training data."
  value       = aws_glue_catalog_database.this.name
}

output "source_secret_arn" {
  description = "Secrets Manager ARN of the source credentials (an ARN, never the secret)."
  value       = var.source_db_secret_arn
}
