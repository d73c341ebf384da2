#!/bin/bash
# Sourced by the mariadb image's entrypoint on the first start of an empty data volume: the ETL user (what Glue and
# Airflow use) may only read the source. ETL_PASSWORD comes from .env through docker-compose.yaml.
set -eu
: "${ETL_PASSWORD:?set MYSQL_PASSWORD in .env}"
escaped=${ETL_PASSWORD//\\/\\\\}
escaped=${escaped//\'/\\\'}
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS 'etl'@'%' IDENTIFIED BY '${escaped}';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'etl'@'%';
GRANT SELECT, SHOW VIEW ON \`classicmodels\`.* TO 'etl'@'%';
FLUSH PRIVILEGES;
SQL
