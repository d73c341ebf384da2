output "workers_role_name" {
  description = "The role the workers' policies are attached to: the Airflow workers run as it."
  value       = module.airflow_workers.role_name
}

output "workers_role_arn" {
  description = "The role this root created (empty when the policies went to an existing role)."
  value       = module.airflow_workers.role_arn
}

output "workers_policy_arns" {
  description = "The workers' five managed policies."
  value       = module.airflow_workers.policy_arns
}

output "workers_policy_documents" {
  description = "The five policy documents, for an administrator who applies them another way."
  value       = module.airflow_workers.policy_documents
}
