# Airflow image for docker-compose.yaml (and a starting point for MWAA/Astro-like images).
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb-java default-jre-headless pkg-config libmariadb-dev gcc \
 && rm -rf /var/lib/apt/lists/*
USER airflow

COPY requirements.txt requirements-dev.txt /opt/recsys/
RUN pip install --no-cache-dir -r /opt/recsys/requirements-dev.txt
COPY include /opt/airflow/include
ENV PYTHONPATH=/opt/airflow/include
