# Root of the vector-database pipeline: `terraform/vector_db`, state key vector_db/terraform.tfstate.
# Applied only by the vector_db_embeddings DAG; the streaming root looks its resources up by name.
module "vector_db" {
  source = "../modules/vector_db"

  names                     = local.names
  region                    = var.region
  vpc_id                    = var.vpc_id
  private_subnet_ids        = var.private_subnet_ids
  client_security_group_ids = var.vector_db_client_security_group_ids
  workers_security_group_id = var.airflow_workers_security_group_id
  engine_version            = var.vector_db_engine_version
  instance_class            = var.vector_db_instance_class
  allocated_storage         = var.vector_db_allocated_storage
  port                      = var.vector_db_port
  database_name             = var.vector_db_name
  master_username           = var.vector_db_master_username
  multi_az                  = var.vector_db_multi_az
  deletion_protection       = var.vector_db_deletion_protection
  skip_final_snapshot       = var.vector_db_skip_final_snapshot
  performance_insights      = var.vector_db_performance_insights
}
