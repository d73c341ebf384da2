# Shared by every pipeline root (symlinked): pinned Terraform and provider versions, the provider, the names.
terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }

  # Partial configuration: bucket, region and use_lockfile come from `-backend-config=backend.hcl`
  # (see backend.hcl.example); the key is set per pipeline by the provisioner (`<pipeline>/terraform.tfstate`).
  # The local stack overrides this with a local backend (recsys.provisioning.targets).
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { Project = var.project_prefix, ManagedBy = "terraform" })
  }
}
