"""Recommender data platform: the logic behind the DAGs (ETL job, model, vector store, streaming, local stack)."""
