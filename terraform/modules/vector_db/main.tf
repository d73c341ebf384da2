# Vector database: RDS PostgreSQL with pgvector in private subnets, credentials generated into Secrets Manager,
# and the ml-artifacts bucket the data scientist (or the training DAG) publishes to.
module "kms" {
  source = "../kms_key"
  alias  = var.names.vector_db
}

module "ml_artifacts" {
  source      = "../secure_bucket"
  name        = var.names.ml_artifacts_bucket
  kms_key_arn = module.kms.arn
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.names.vector_db}-subnets"
  subnet_ids = var.private_subnet_ids
}

resource "aws_security_group" "vector_db" {
  name        = "${var.names.vector_db}-sg"
  description = "PostgreSQL ${var.names.vector_db}: only the platform's clients"
  vpc_id      = var.vpc_id
}

# Clients (the Lambdas, Glue, the Airflow workers) carry this group; the database admits only it and listed groups.
resource "aws_security_group" "clients" {
  #checkov:skip=CKV2_AWS_5:Attached to the Lambdas by the streaming_inference root (looked up by name).
  name        = "${var.names.vector_db}-clients-sg"
  description = "Members may reach ${var.names.vector_db} on 5432"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "clients_to_db" {
  security_group_id            = aws_security_group.clients.id
  referenced_security_group_id = aws_security_group.vector_db.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL"
}

resource "aws_vpc_security_group_egress_rule" "clients_https" {
  security_group_id = aws_security_group.clients.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "AWS APIs (S3, Secrets Manager) through endpoints or NAT"
}

resource "aws_vpc_security_group_ingress_rule" "db_from_clients" {
  for_each                     = toset(concat([aws_security_group.clients.id], var.client_security_group_ids))
  security_group_id            = aws_security_group.vector_db.id
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "PostgreSQL from a platform client"
}

resource "random_password" "master" {
  length           = 32
  special          = true
  override_special = "!#%*()-_=+[]{}<>:?"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_118:Enhanced monitoring needs a monitoring role per account; Performance Insights is on.
  #checkov:skip=CKV2_AWS_30:Query logging is a per-deployment parameter group choice (log volume and cost).
  #checkov:skip=CKV_AWS_157:Multi-AZ is a variable (multi_az); single-AZ is the lab's size.
  identifier                          = var.names.vector_db
  engine                              = "postgres"
  engine_version                      = var.engine_version
  instance_class                      = var.instance_class
  allocated_storage                   = var.allocated_storage
  max_allocated_storage               = var.allocated_storage * 5
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = module.kms.arn
  db_name                             = "postgres"
  username                            = "postgres"
  password                            = random_password.master.result
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.vector_db.id]
  publicly_accessible                 = false
  multi_az                            = var.multi_az
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = !var.deletion_protection
  final_snapshot_identifier           = "${var.names.vector_db}-final"
  backup_retention_period             = 7
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = module.kms.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  apply_immediately                   = false
}

resource "aws_secretsmanager_secret" "credentials" {
  #checkov:skip=CKV2_AWS_57:Rotation needs a rotation Lambda in the VPC; rotate with the RDS-managed flow per deployment.
  name        = var.names.vector_db_secret
  description = "Master credentials of ${var.names.vector_db} (engine, host, port, username, password, dbname)"
  kms_key_id  = module.kms.arn
}

resource "aws_secretsmanager_secret_version" "credentials" {
  secret_id = aws_secretsmanager_secret.credentials.id
  secret_string = jsonencode({
    engine   = "postgres"
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    username = aws_db_instance.this.username
    password = random_password.master.result
    dbname   = aws_db_instance.this.db_name
  })
}
