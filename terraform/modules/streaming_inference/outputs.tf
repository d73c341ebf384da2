output "recommendations_bucket" {
  description = "Recommendations bucket."
  value       = module.recommendations.name
}

output "kinesis_stream_name" {
  description = "User-activity stream."
  value       = aws_kinesis_stream.activity.name
}

output "delivery_stream_name" {
  description = "Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "smoke_delivery_stream_name" {
  description = "DirectPut Firehose stream for the deploy DAG's delivery check (same processor, prefix smoke-tests/)."
  value       = aws_kinesis_firehose_delivery_stream.smoke.name
}

output "transformation_lambda_name" {
  description = "Firehose processor Lambda."
  value       = aws_lambda_function.this["transformation"].function_name
}

output "model_inference_lambda_name" {
  description = "Model-inference Lambda."
  value       = aws_lambda_function.this["model_inference"].function_name
}

output "model_inference_url" {
  description = "Function URL of the inference API (IAM-authenticated)."
  value       = aws_lambda_function_url.model_inference.function_url
}

output "lambda_alias" {
  description = "Alias Firehose and the Function URL invoke; the deploy DAG moves it."
  value       = "live"
}
