# Images for docker-compose.yaml (and a starting point for MWAA/Astro-like images). Two targets:
#   runtime  Airflow + this project's DAG dependencies (requirements.txt) + Terraform + include/ (the production and
#            serving packages): no dev or test packages, nothing of the local platform
#   local    runtime + moto and Spark (requirements-local.txt) + local/ (the local platform: the AWS emulator and its
#            executors, the local Terraform target)
FROM apache/airflow:3.3.2-python3.11 AS runtime

# Terraform: the provisioning tasks run the roots in terraform/ (the lock files pin the AWS provider build).
ARG TERRAFORM_VERSION=1.11.4

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libmariadb-dev gcc curl unzip \
 && cd /tmp \
 && curl -fsSLO "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip" \
 && curl -fsSLO "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_SHA256SUMS" \
 && grep "linux_amd64.zip" "terraform_${TERRAFORM_VERSION}_SHA256SUMS" | sha256sum -c - \
 && unzip -d /usr/local/bin "terraform_${TERRAFORM_VERSION}_linux_amd64.zip" terraform \
 && rm -f /tmp/terraform_* \
 && rm -rf /var/lib/apt/lists/*
USER airflow

# torch's CPU build, from PyTorch's CPU index: the public index's Linux wheel pulls gigabytes of CUDA libraries
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY requirements.txt /opt/recsys/
# With the image's own Airflow named, as Airflow's docs ask: a requirement can then neither upgrade nor downgrade it
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/recsys/requirements.txt
COPY include /opt/airflow/include
# The Lambda dependencies' wheels (hash-checked), fetched while the image builds: workers in private subnets then
# build the Lambda zips from these files alone (RECSYS_LAMBDA_WHEELHOUSE), without a route to the package index.
RUN PYTHONPATH=/opt/airflow/include python -m recsys.streaming.packaging --wheelhouse /opt/airflow/lambda-wheelhouse
# The locked AWS provider, mirrored while the image builds: `terraform init` on the workers then needs no route to
# registry.terraform.io (TF_PLUGIN_MIRROR). Every root locks the same provider build: one root's mirror serves all.
COPY terraform /tmp/recsys-terraform
RUN cd /tmp/recsys-terraform/etl \
 && terraform providers mirror -platform=linux_amd64 /opt/airflow/terraform-providers \
 && rm -rf /tmp/recsys-terraform
ENV PYTHONPATH=/opt/airflow/include \
    TERRAFORM_DIR=/opt/airflow/terraform \
    TF_PLUGIN_MIRROR=/opt/airflow/terraform-providers \
    RECSYS_LAMBDA_WHEELHOUSE=/opt/airflow/lambda-wheelhouse

FROM runtime AS local
USER root
# Java and the MariaDB JDBC driver for the Glue script's Spark
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb-java default-jre-headless \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY requirements-local.txt /opt/recsys/
RUN pip install --no-cache-dir -r /opt/recsys/requirements-local.txt
COPY local /opt/airflow/local
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/local \
    RECSYS_TARGET_FACTORY=recsys_local.target:LocalTarget
