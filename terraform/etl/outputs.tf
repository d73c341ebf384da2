# The outputs the batch DAG reads (recsys.provisioning.OUTPUTS["etl"]).
output "datalake_bucket" {
  description = "Datalake bucket."
  value       = module.etl.datalake_bucket
}

output "scripts_bucket" {
  description = "Scripts bucket."
  value       = module.etl.scripts_bucket
}

output "ml_artifacts_bucket" {
  description = "ml-artifacts bucket."
  value       = module.etl.ml_artifacts_bucket
}

output "glue_table" {
  description = "Catalog table over the training data."
  value       = module.etl.glue_table
}

output "glue_job_name" {
  description = "Glue job name."
  value       = module.etl.glue_job_name
}

output "glue_script_s3_url" {
  description = "Glue script location."
  value       = module.etl.glue_script_s3_url
}

output "glue_database" {
  description = "Glue catalog database."
  value       = module.etl.glue_database
}

output "source_secret_arn" {
  description = "Source credentials secret ARN."
  value       = module.etl.source_secret_arn
}
