output "ml_artifacts_bucket" {
  description = "Bucket of embeddings, model and scalers."
  value       = module.ml_artifacts.name
}

output "vector_db_secret_arn" {
  description = "ARN of the credentials secret (never the password)."
  value       = aws_secretsmanager_secret.credentials.arn
}

output "vector_db_host" {
  description = "Database host name."
  value       = aws_db_instance.this.address
}

output "vector_db_port" {
  description = "Database port."
  value       = aws_db_instance.this.port
}

output "vector_db_name" {
  description = "Database name."
  value       = aws_db_instance.this.db_name
}

output "client_security_group_id" {
  description = "Security group whose members may reach the database (the Lambdas use it)."
  value       = aws_security_group.clients.id
}

output "kms_key_arn" {
  description = "Key encrypting the database, the secret and the artifacts bucket."
  value       = module.kms.arn
}
