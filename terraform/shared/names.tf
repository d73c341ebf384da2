# One source of truth for resource names, shared with the DAGs: these templates are
# include/recsys/config.py NAME_TEMPLATES (tests/terraform checks that they agree).
data "aws_caller_identity" "current" {}

locals {
  account_id         = data.aws_caller_identity.current.account_id
  prefix_underscored = replace(var.project_prefix, "-", "_")

  names = {
    datalake_bucket        = "${var.project_prefix}-${local.account_id}-datalake"
    ml_artifacts_bucket    = "${var.project_prefix}-${local.account_id}-ml-artifacts"
    recommendations_bucket = "${var.project_prefix}-${local.account_id}-recommendations"
    scripts_bucket         = "${var.project_prefix}-${local.account_id}-scripts"
    glue_job               = "${var.project_prefix}-etl-job"
    glue_role              = "${var.project_prefix}-glue-role"
    source_db_secret       = "${var.project_prefix}-source-db-credentials"
    glue_database          = "${local.prefix_underscored}_db"
    vector_db              = "${var.project_prefix}-vector-db"
    vector_db_loader       = "${var.project_prefix}-vector-db-loader"
    vector_db_reader       = "${var.project_prefix}-vector-db-reader"
    kinesis_stream         = "${var.project_prefix}-kinesis-data-stream"
    delivery_stream        = "${var.project_prefix}-delivery-stream"
    transformation_lambda  = "${var.project_prefix}-transformation-lambda"
    model_inference_lambda = "${var.project_prefix}-model-inference"
  }
}
