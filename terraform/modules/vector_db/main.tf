# Vector database: RDS PostgreSQL with pgvector in private subnets. RDS itself generates the master password and
# keeps it in a Secrets Manager secret it rotates (manage_master_user_password): no password in Terraform state.
# The master user only administers: the loader and the readers (the Lambdas) log in as their own roles, whose
# secrets are created here empty; the vector_db_embeddings DAG (recsys.vectordb.roles) creates the roles as the
# master, generates their passwords and puts them into these secrets. So no role password is in state either.
# TLS: RDS PostgreSQL 15+ forces SSL (rds.force_ssl defaults to 1); clients verify the server certificate.
module "kms" {
  source = "../kms_key"
  alias  = var.names.vector_db
  region = var.region
}

resource "aws_secretsmanager_secret" "role" {
  #checkov:skip=CKV2_AWS_57:Rotated by the vector_db_embeddings DAG (param rotate_role_passwords), which alone can
  #change the role's password in the database; a rotation Lambda would need the master secret as well.
  for_each                = toset(["loader", "reader"])
  name                    = var.names["vector_db_${each.key}"]
  description             = "Credentials of the ${var.names.vector_db} ${each.key} role (username, password); written by the vector_db_embeddings DAG"
  kms_key_id              = module.kms.arn
  recovery_window_in_days = 7
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.names.vector_db}-subnets"
  subnet_ids = var.private_subnet_ids

  lifecycle {
    precondition {
      condition     = length(distinct([for subnet in data.aws_subnet.private : subnet.availability_zone])) >= 2
      error_message = "private_subnet_ids must span at least two availability zones (RDS refuses a subnet group in one)."
    }
  }
}

data "aws_subnet" "private" {
  for_each = toset(var.private_subnet_ids)
  id       = each.value
}

resource "aws_security_group" "vector_db" {
  name        = "${var.names.vector_db}-sg"
  description = "PostgreSQL ${var.names.vector_db}: only the platform's clients"
  vpc_id      = var.vpc_id
}

# Clients (the Lambdas, the Airflow workers) carry this group; the database admits only it and listed groups.
resource "aws_security_group" "clients" {
  #checkov:skip=CKV2_AWS_5:Attached to the Lambdas by the streaming_inference root (looked up by name).
  name        = "${var.names.vector_db}-clients-sg"
  description = "Members may reach ${var.names.vector_db} on its port"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "clients_to_db" {
  security_group_id            = aws_security_group.clients.id
  referenced_security_group_id = aws_security_group.vector_db.id
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
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
  security_group_id            = aws_security_group.vector_db.id
  referenced_security_group_id = aws_security_group.clients.id
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  description                  = "PostgreSQL from the platform's client group"
}

resource "aws_vpc_security_group_ingress_rule" "db_from_workers" {
  security_group_id            = aws_security_group.vector_db.id
  referenced_security_group_id = var.workers_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  description                  = "PostgreSQL from the Airflow workers"
}

# Keyed by the caller's ids (known at plan time), never by an id this module creates.
resource "aws_vpc_security_group_ingress_rule" "db_from_listed" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.vector_db.id
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  description                  = "PostgreSQL from a listed client"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_118:Enhanced monitoring needs a monitoring role per account; Performance Insights is on.
  #checkov:skip=CKV2_AWS_30:Query logging is a per-deployment parameter group choice (log volume and cost).
  #checkov:skip=CKV_AWS_157:Multi-AZ is a variable (multi_az); single-AZ is the lab's size.
  #checkov:skip=CKV_AWS_161:Clients log in as per-role users with passwords in Secrets Manager (recsys.vectordb.roles).
  identifier                          = var.names.vector_db
  engine                              = "postgres"
  engine_version                      = var.engine_version
  instance_class                      = var.instance_class
  allocated_storage                   = var.allocated_storage
  max_allocated_storage               = var.allocated_storage * 5
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = module.kms.arn
  port                                = var.port
  db_name                             = var.database_name
  username                            = var.master_username
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = module.kms.arn
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.vector_db.id]
  publicly_accessible                 = false
  multi_az                            = var.multi_az
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = var.skip_final_snapshot
  final_snapshot_identifier           = "${var.names.vector_db}-final"
  backup_retention_period             = 7
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = false
  performance_insights_enabled        = var.performance_insights
  performance_insights_kms_key_id     = var.performance_insights ? module.kms.arn : null
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  apply_immediately                   = false

  # engine_version is a major version: RDS applies minor upgrades itself (auto_minor_version_upgrade), so the
  # minor version it reports must not read as drift.
  lifecycle {
    ignore_changes = [engine_version]
  }
}
