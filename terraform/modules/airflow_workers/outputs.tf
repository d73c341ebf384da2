output "role_name" {
  description = "The role the policies are attached to."
  value       = local.role_name
}

output "role_arn" {
  description = "The role the module created (empty when it attached the policies to an existing one)."
  value       = local.create_role ? aws_iam_role.workers[0].arn : ""
}

output "policy_arns" {
  description = "The five managed policies, by name."
  value       = { for key, policy in aws_iam_policy.workers : key => policy.arn }
}

output "policy_documents" {
  description = "The five policy documents (JSON), for an administrator who applies them another way."
  value       = local.documents
}
