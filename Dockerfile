# Airflow image for docker-compose.yaml (and a starting point for MWAA/Astro-like images).
FROM apache/airflow:3.3.2-python3.11

# Terraform: the provisioning tasks run the roots in terraform/ (the lock files pin the AWS provider build).
ARG TERRAFORM_VERSION=1.11.4

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb-java default-jre-headless pkg-config libmariadb-dev gcc \
    curl unzip \
 && cd /tmp \
 && curl -fsSLO "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip" \
 && curl -fsSLO "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_SHA256SUMS" \
 && grep "linux_amd64.zip" "terraform_${TERRAFORM_VERSION}_SHA256SUMS" | sha256sum -c - \
 && unzip -d /usr/local/bin "terraform_${TERRAFORM_VERSION}_linux_amd64.zip" terraform \
 && rm -f /tmp/terraform_* \
 && rm -rf /var/lib/apt/lists/*
USER airflow

COPY requirements.txt requirements-dev.txt /opt/recsys/
RUN pip install --no-cache-dir -r /opt/recsys/requirements-dev.txt
COPY include /opt/airflow/include
ENV PYTHONPATH=/opt/airflow/include \
    TERRAFORM_DIR=/opt/airflow/terraform
