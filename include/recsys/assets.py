"""Airflow Assets that chain the pipelines: data lands, then the next DAG runs (not on a clock).

Named logically: physical bucket names depend on the account and prefix, which DAG parsing must not look up.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: The training dataset in the datalake bucket (`ratings-ml-training/`), published by `batch_training_data`.
TRAINING_DATA = Asset(name="ratings_ml_training")
#: The ml-artifacts bucket's embeddings, model and scalers, published by the training DAG.
ML_ARTIFACTS = Asset(name="ml_artifacts")
#: The embeddings loaded into pgvector (`item_emb`, `user_emb`).
VECTOR_DB_EMBEDDINGS = Asset(name="vector_db_embeddings")
