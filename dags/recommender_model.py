"""
# recommender_model

Trains the hybrid two-tower recommender (a ranking objective, customers' and products' learned embeddings plus
attribute towers for newcomers) on the training dataset and publishes the `ml-artifacts` bucket in the lab's
layout (embeddings CSVs, `model/best_model.pth`, `scalers/*.pkl`, `model/metrics.json`, and a torch- and
pickle-free inference bundle for the Lambdas).

Runs when the `ratings_ml_training` Asset updates (after `batch_training_data`), and by hand.

| task | what it does |
|---|---|
| `read_etl_outputs` | the outputs of Terraform root `terraform/etl` (applied by `batch_training_data`): the ml-artifacts bucket |
| `train_model` | reads the dataset of the Asset event that triggered the run (its manifest URL is in the event's `extra`; a manual run reads the live `_manifest.json`), trains two candidates (towers only; ids with towers for newcomers; deterministic for the seed, early stopping on validation NDCG@10) and keeps the better one on validation, stages every file under `versions/<model version>/` |
| `check_model_quality` | the gate, on the held-out test split (nothing was chosen on it): per customer, the model's NDCG@10 (over items unseen in training) paired with the stronger of the most-popular and random lists; the 95% bootstrap lower bound of the difference must be above zero and the mean at least 1.25x the baseline's; else the task fails with the figures and the live version keeps serving |
| `promote_model` | copies the version to the canonical keys and writes `latest.json` last; publishes the `ml_artifacts` Asset with the version and its ranking against popularity and random in the event's `extra` |

Each version's `versions/<v>/metrics.json` holds recall@10, NDCG@10, MAP@10 and catalog coverage of the model, the
most-popular and the random ranking, for known and cold-start customers, and the gate's interval (docs/pipelines.md,
"The model").

## Params

* `epochs` (300, early stopping ends sooner), `seed` (42): training; the same data and seed give the same model.
* `force_publish` (false): publish even when the gate fails (experiments only).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, chain, dag, task

from recsys.assets import ML_ARTIFACTS, TRAINING_DATA
from recsys.config import AWS_CONN_ID
from recsys.dag_defaults import DEFAULT_ARGS
from recsys.provisioning import provision_in_task


@dag(
    schedule=[TRAINING_DATA],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["ml", "training"],
    doc_md=__doc__,
    params={
        "epochs": Param(300, type="integer", minimum=1, maximum=500, description="maximum training epochs"),
        "seed": Param(42, type="integer", description="random seed (data split, initialisation, batches)"),
        "force_publish": Param(False, type="boolean", description="publish even if the quality gate fails"),
    },
)
def recommender_model() -> None:
    @task
    def read_etl_outputs() -> dict:
        return provision_in_task("etl", apply=False)

    @task
    def train_model(infra: dict, **context) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from recsys.model.pipeline import train_and_stage, triggering_manifest_url

        params = context["params"]
        manifest_url = triggering_manifest_url(context["triggering_asset_events"].get(TRAINING_DATA, []))
        return train_and_stage(
            S3Hook(aws_conn_id=AWS_CONN_ID),
            infra,
            int(params["epochs"]),
            int(params["seed"]),
            manifest_url,
        )

    @task
    def check_model_quality(candidate: dict, **context) -> str:
        from recsys.model.train import quality_gate

        return quality_gate(candidate["metrics"], force=bool(context["params"]["force_publish"]))

    @task(outlets=[ML_ARTIFACTS])
    def promote_model(candidate: dict, gate: str, **context) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from recsys.model.artifacts import promote
        from recsys.model.train import ranking_summary

        pointer = promote(S3Hook(aws_conn_id=AWS_CONN_ID).get_conn(), candidate["bucket"], candidate["model_version"])
        # each version's figures where operators look: the Asset event (Assets view) and this task's return value
        figures = {**ranking_summary(candidate["metrics"]), "gate": gate}
        context["outlet_events"][ML_ARTIFACTS].extra = {"model_version": candidate["model_version"], **figures}
        return {**pointer, **figures}

    infra = read_etl_outputs()
    candidate = train_model(infra)
    gate = check_model_quality(candidate)
    chain(candidate, gate, promote_model(candidate, gate))


recommender_model()
