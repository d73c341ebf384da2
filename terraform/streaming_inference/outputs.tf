# The outputs the deploy DAG reads (recsys.provisioning.OUTPUTS["streaming_inference"]).
output "recommendations_bucket" {
  description = "Recommendations bucket."
  value       = module.streaming_inference.recommendations_bucket
}

output "kinesis_stream_name" {
  description = "User-activity stream."
  value       = module.streaming_inference.kinesis_stream_name
}

output "delivery_stream_name" {
  description = "Firehose delivery stream."
  value       = module.streaming_inference.delivery_stream_name
}

output "smoke_delivery_stream_name" {
  description = "DirectPut Firehose stream for the deploy DAG's delivery check (prefix smoke-tests/)."
  value       = module.streaming_inference.smoke_delivery_stream_name
}

output "transformation_lambda_name" {
  description = "Transformation Lambda."
  value       = module.streaming_inference.transformation_lambda_name
}

output "model_inference_lambda_name" {
  description = "Model-inference Lambda."
  value       = module.streaming_inference.model_inference_lambda_name
}

output "lambda_packages_bucket" {
  description = "Bucket of the Lambda packages."
  value       = local.names.scripts_bucket
}

output "lambda_alias" {
  description = "Alias Firehose and the Function URL invoke (the deploy DAG moves it)."
  value       = module.streaming_inference.lambda_alias
}

output "model_inference_url" {
  description = "Function URL of the inference API."
  value       = module.streaming_inference.model_inference_url
}
