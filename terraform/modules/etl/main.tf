# Batch training data: the platform's buckets (datalake, scripts, ml-artifacts), the Glue connection to the MySQL
# source, the Glue job, and the catalog table over the training data.

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
}

data "aws_subnet" "private" {
  for_each = toset(var.private_subnet_ids)
  id       = each.value
}

locals {
  # the Glue connection's subnet (Glue runs a job's workers in one subnet)
  first_subnet = data.aws_subnet.private[var.private_subnet_ids[0]]
}

module "kms" {
  source         = "../kms_key"
  alias          = var.names.glue_job
  region         = var.region
  log_group_arns = ["arn:${local.partition}:logs:${var.region}:${var.account_id}:log-group:/aws-glue/*"]
}

module "datalake" {
  source          = "../secure_bucket"
  name            = var.names.datalake_bucket
  kms_key_arn     = module.kms.arn
  expire_prefixes = { "_staging/" = 3 }
}

module "scripts" {
  source      = "../secure_bucket"
  name        = var.names.scripts_bucket
  kms_key_arn = module.kms.arn
}

# The model DAG publishes here and the vector-DB and streaming DAGs read it; it lives in this root because the
# nightly chain applies this root first.
module "ml_artifacts" {
  source      = "../secure_bucket"
  name        = var.names.ml_artifacts_bucket
  kms_key_arn = module.kms.arn
}

resource "aws_glue_catalog_database" "this" {
  name = var.names.glue_database
}

# Glue needs a self-referencing security group for its workers, and egress to the source and to S3 (HTTPS).
resource "aws_security_group" "glue" {
  #checkov:skip=CKV2_AWS_5:Attached to the Glue connection (physical_connection_requirements), which checkov does not follow.
  name        = "${var.names.glue_job}-sg"
  description = "Glue workers of ${var.names.glue_job}"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "glue_self" {
  #checkov:skip=CKV_AWS_24:Self-referencing rule (Glue's requirement), not 0.0.0.0/0.
  #checkov:skip=CKV_AWS_25:Self-referencing rule (Glue's requirement), not 0.0.0.0/0.
  #checkov:skip=CKV_AWS_260:Self-referencing rule (Glue's requirement), not 0.0.0.0/0.
  security_group_id            = aws_security_group.glue.id
  referenced_security_group_id = aws_security_group.glue.id
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
  description                  = "Glue workers talk to each other"
}

resource "aws_vpc_security_group_egress_rule" "glue_self" {
  security_group_id            = aws_security_group.glue.id
  referenced_security_group_id = aws_security_group.glue.id
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
  description                  = "Glue workers talk to each other"
}

resource "aws_vpc_security_group_egress_rule" "glue_source" {
  security_group_id            = aws_security_group.glue.id
  referenced_security_group_id = var.source_db_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.source_db_port
  to_port                      = var.source_db_port
  description                  = "JDBC to the MySQL source"
}

resource "aws_vpc_security_group_egress_rule" "glue_https" {
  security_group_id = aws_security_group.glue.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "S3, Secrets Manager, Glue and CloudWatch endpoints"
}

resource "aws_vpc_security_group_ingress_rule" "source_from_glue" {
  security_group_id            = var.source_db_security_group_id
  referenced_security_group_id = aws_security_group.glue.id
  ip_protocol                  = "tcp"
  from_port                    = var.source_db_port
  to_port                      = var.source_db_port
  description                  = "Glue ${var.names.glue_job} reads the source"
}

# platform_health, the batch DAG's checks and the streaming smoke tasks open MySQL connections from the workers
resource "aws_vpc_security_group_ingress_rule" "source_from_workers" {
  security_group_id            = var.source_db_security_group_id
  referenced_security_group_id = var.airflow_workers_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.source_db_port
  to_port                      = var.source_db_port
  description                  = "The Airflow workers of ${var.names.glue_job} read the source"
}

resource "aws_glue_connection" "source" {
  name            = "${var.names.glue_job}-source"
  connection_type = "JDBC"
  connection_properties = {
    JDBC_CONNECTION_URL = "jdbc:mysql://${var.source_db_host}:${var.source_db_port}/${var.source_db_name}"
    SECRET_ID           = var.source_db_secret_arn
    JDBC_ENFORCE_SSL    = "true"
  }

  physical_connection_requirements {
    availability_zone      = local.first_subnet.availability_zone
    subnet_id              = local.first_subnet.id
    security_group_id_list = [aws_security_group.glue.id]
  }

  lifecycle {
    precondition {
      condition     = length(distinct([for subnet in data.aws_subnet.private : subnet.availability_zone])) >= 2
      error_message = "private_subnet_ids must span at least two availability zones (the vector DB's subnet group and the Lambdas need two)."
    }
    precondition {
      condition     = alltrue([for subnet in data.aws_subnet.private : subnet.vpc_id == var.vpc_id])
      error_message = "every subnet of private_subnet_ids must be in vpc_id."
    }
  }
}

resource "aws_glue_security_configuration" "this" {
  name = "${var.names.glue_job}-encryption"

  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = module.kms.arn
    }
    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = module.kms.arn
    }
    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = module.kms.arn
    }
  }
}

data "aws_iam_policy_document" "glue_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "glue" {
  name               = var.names.glue_role
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

data "aws_iam_policy_document" "glue" {
  #checkov:skip=CKV_AWS_111:EC2 Describe* and ENI actions of Glue connections have no resource-level permissions.
  #checkov:skip=CKV_AWS_356:EC2 Describe* and ENI actions of Glue connections have no resource-level permissions.
  statement {
    sid       = "ReadScripts"
    actions   = ["s3:GetObject"]
    resources = ["${module.scripts.arn}/glue/*"]
  }
  statement {
    sid       = "WriteDatalake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.datalake.arn}/*"]
  }
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = [module.datalake.arn, module.scripts.arn]
  }
  statement {
    sid       = "SourceCredentials"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.source_db_secret_arn]
  }
  statement {
    sid       = "Encryption"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [module.kms.arn]
  }
  statement {
    sid     = "Catalog"
    actions = ["glue:GetDatabase", "glue:GetTable", "glue:GetConnection"]
    resources = [
      "arn:${local.partition}:glue:${var.region}:${var.account_id}:catalog",
      aws_glue_catalog_database.this.arn,
      "arn:${local.partition}:glue:${var.region}:${var.account_id}:table/${var.names.glue_database}/*",
      aws_glue_connection.source.arn,
    ]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"]
    resources = ["arn:${local.partition}:logs:${var.region}:${var.account_id}:log-group:/aws-glue/*"]
  }
  # --enable-metrics: PutMetricData has no resource-level permissions; the namespace condition limits it to Glue's.
  statement {
    sid       = "JobMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Glue"]
    }
  }
  # What a Glue connection in a VPC needs (AWS's AWSGlueServiceRole, narrowed): these Describe* have no resource-level
  # permissions (DescribeVpcAttribute has: the platform's VPC only); network interfaces only in the connection's
  # subnet with Glue's security group; tags only Glue's own key on network resources.
  statement {
    sid = "DescribeNetwork"
    actions = [
      "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcEndpoints", "ec2:DescribeRouteTables", "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "DescribeConnectionVpc"
    actions   = ["ec2:DescribeVpcAttribute"]
    resources = ["arn:${local.partition}:ec2:${var.region}:${var.account_id}:vpc/${var.vpc_id}"]
  }
  statement {
    sid     = "ConnectionNetworkInterfaces"
    actions = ["ec2:CreateNetworkInterface"]
    resources = [
      "arn:${local.partition}:ec2:${var.region}:${var.account_id}:network-interface/*",
      "arn:${local.partition}:ec2:${var.region}:${var.account_id}:subnet/${local.first_subnet.id}",
      "arn:${local.partition}:ec2:${var.region}:${var.account_id}:security-group/${aws_security_group.glue.id}",
    ]
  }
  statement {
    sid       = "DeleteConnectionNetworkInterfaces"
    actions   = ["ec2:DeleteNetworkInterface"]
    resources = ["arn:${local.partition}:ec2:${var.region}:${var.account_id}:network-interface/*"]
  }
  statement {
    sid     = "TagGlueNetworkResources"
    actions = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = [
      "arn:${local.partition}:ec2:${var.region}:${var.account_id}:network-interface/*",
      "arn:${local.partition}:ec2:${var.region}:${var.account_id}:security-group/*",
      "arn:${local.partition}:ec2:${var.region}:${var.account_id}:instance/*",
    ]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["aws-glue-service-resource"]
    }
  }
}

resource "aws_iam_role_policy" "glue" {
  name   = "${var.names.glue_job}-least-privilege"
  role   = aws_iam_role.glue.id
  policy = data.aws_iam_policy_document.glue.json
}

resource "aws_glue_job" "this" {
  name                   = var.names.glue_job
  role_arn               = aws_iam_role.glue.arn
  glue_version           = var.glue_version
  worker_type            = var.worker_type
  number_of_workers      = var.number_of_workers
  timeout                = var.timeout_minutes
  execution_class        = "STANDARD"
  connections            = [aws_glue_connection.source.name]
  security_configuration = aws_glue_security_configuration.this.name

  command {
    name            = "glueetl"
    script_location = "s3://${module.scripts.name}/${var.glue_script_key}"
    python_version  = "3"
  }

  execution_property {
    max_concurrent_runs = 1
  }

  # The script reads the source over TLS always (JDBC_ENFORCE_SSL above, applied to its Spark reads); with
  # --source_ssl_ca it also verifies the server's certificate against that CA: the trust store this root uploads,
  # which --extra-files copies into the job's working directory and the script opens as a relative file: URL
  # (Connector/J opens the URL with java.net.URL, which has no s3: handler).
  default_arguments = merge({
    "--job-language"                     = "python"
    "--source_secret_id"                 = var.source_db_secret_arn
    "--source_host"                      = var.source_db_host
    "--source_port"                      = tostring(var.source_db_port)
    "--source_database"                  = var.source_db_name
    "--target_path"                      = "s3://${module.datalake.name}/${var.training_data_prefix}"
    "--jdbc_partitions"                  = tostring(var.jdbc_partitions)
    "--enable-continuous-cloudwatch-log" = "true"
    "--enable-metrics"                   = "true"
    "--TempDir"                          = "s3://${module.datalake.name}/_staging/glue-temp/"
    }, var.source_db_ssl_ca == "" ? {} : {
    "--extra-files"   = "s3://${module.scripts.name}/${aws_s3_object.source_ca[0].key}"
    "--source_ssl_ca" = "file:${basename(var.source_db_ssl_ca)}"
  })
}

# The source's CA trust store, from the file source_db_ssl_ca names on the machine running Terraform, next to the
# Glue script (the job's role reads glue/*).
resource "aws_s3_object" "source_ca" {
  count       = var.source_db_ssl_ca == "" ? 0 : 1
  bucket      = module.scripts.name
  key         = "glue/certs/${basename(var.source_db_ssl_ca)}"
  source      = var.source_db_ssl_ca
  source_hash = filemd5(var.source_db_ssl_ca)
  kms_key_id  = module.kms.arn
}

# The training data as an Athena/Spark table with partition projection: a new customerNumber=<N>/ folder is
# queryable at once, with no crawler and no partition writes by the job. The columns are the data contract
# (include/recsys/etl/glue_job.py TRAINING_SCHEMA; tests/terraform checks that they agree).
resource "aws_glue_catalog_table" "training_data" {
  name          = var.catalog_table
  database_name = aws_glue_catalog_database.this.name
  table_type    = "EXTERNAL_TABLE"
  description   = "Recommender training data (ratings joined to customers and products), one folder per customer"

  parameters = {
    "classification"                  = "parquet"
    "EXTERNAL"                        = "TRUE"
    "projection.enabled"              = "true"
    "projection.customernumber.type"  = "integer"
    "projection.customernumber.range" = var.customer_number_range
    "storage.location.template"       = "s3://${module.datalake.name}/${var.training_data_prefix}customerNumber=$${customernumber}/"
  }

  partition_keys {
    name = "customernumber"
    type = "int"
  }

  storage_descriptor {
    location      = "s3://${module.datalake.name}/${var.training_data_prefix}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = var.training_columns
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}
