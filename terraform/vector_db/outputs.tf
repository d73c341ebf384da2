# The outputs the vector-DB and streaming DAGs read (recsys.provisioning.OUTPUTS["vector_db"]); no password.
output "vector_db_secret_arn" {
  description = "RDS-managed credentials secret ARN (username and password)."
  value       = module.vector_db.vector_db_secret_arn
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
