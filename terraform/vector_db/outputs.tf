# The outputs the vector-DB and streaming DAGs read (recsys.provisioning.OUTPUTS["vector_db"]); no password.
output "vector_db_secret_arn" {
  description = "RDS-managed master credentials secret ARN (username and password): administration only."
  value       = module.vector_db.vector_db_secret_arn
}

output "vector_db_loader_secret_arn" {
  description = "Secret of the loader role (username, password; written by the vector_db_embeddings DAG)."
  value       = module.vector_db.loader_secret_arn
}

output "vector_db_reader_secret_arn" {
  description = "Secret of the read-only role the Lambdas use (written by the vector_db_embeddings DAG)."
  value       = module.vector_db.reader_secret_arn
}

output "vector_db_host" {
  description = "Database host."
  value       = module.vector_db.vector_db_host
}

output "vector_db_port" {
  description = "Database port."
  value       = module.vector_db.vector_db_port
}

output "vector_db_name" {
  description = "Database name."
  value       = module.vector_db.vector_db_name
}
