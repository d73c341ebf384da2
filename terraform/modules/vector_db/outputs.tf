output "vector_db_secret_arn" {
  description = "ARN of the RDS-managed master credentials secret (username, password; never the password itself)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "loader_secret_arn" {
  description = "Secret of the loader role (written by the vector_db_embeddings DAG; empty until its first run)."
  value       = aws_secretsmanager_secret.role["loader"].arn
}

output "reader_secret_arn" {
  description = "Secret of the read-only role the Lambdas use (written by the vector_db_embeddings DAG)."
  value       = aws_secretsmanager_secret.role["reader"].arn
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
  description = "Key encrypting the database and its credentials secret."
  value       = module.kms.arn
}
