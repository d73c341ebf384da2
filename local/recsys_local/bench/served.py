"""The served path against the model's own ranking (`make bench served`, after `make demo`): held-out customers'
events through the deployed transformation Lambda (:mod:`recsys_local.served`); the targets: the served lists'
NDCG at the Lambda's k reaches :data:`NDCG_RATIO` of the exact top k's, and :data:`OVERLAP` of their items are the
exact top k's. Then the same events through the Lambdas' search code over a scratch copy of the version whose
index has :data:`COARSE_LISTS` lists scanned at the shipped probes (the catalog's own index is one list, so exact):
what the index loses shows there, against the same target."""

from __future__ import annotations

from recsys_local.bench import Entry, say
from recsys_local.bench.end_to_end import NotDeployed
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack

#: Served NDCG / exact NDCG, and the share of the exact top k the served lists hold (set from the first measurement).
NDCG_RATIO = 0.95
OVERLAP = 0.95
#: The scratch copy's IVFFlat lists: twice the shipped probes, so each query scans half of them.
COARSE_LISTS = 2 * 15
BENCH_DB = "bench_served_index"


def run(quick: bool) -> list[Entry]:
    from recsys_local.served import measure

    stack = Stack(stack_settings())
    names = stack.settings.names
    lam = stack.client("lambda")
    try:
        lam.get_alias(FunctionName=names.transformation_lambda, Name="live")
    except lam.exceptions.ResourceNotFoundException:
        raise NotDeployed(f"{names.transformation_lambda} has no live alias: run `make demo` first") from None
    result = measure(stack.client("s3"), lam, names.ml_artifacts_bucket, names.transformation_lambda)
    k = result["k"]
    say(
        f"served vs exact on {result['users']} held-out customers, model {result['model_version']}: NDCG@{k} "
        f"{result['served'][f'ndcg@{k}']:.3f} vs {result['exact'][f'ndcg@{k}']:.3f}, overlap {result['overlap']:.3f}"
    )
    from recsys_local.bench import drop_scratch_database, scratch_database
    from recsys_local.served import replay_through_a_coarse_index
    from recsys_serving.search import DEFAULT_PROBES

    try:  # the shipped probes, and one list per query to show what loss looks like
        coarse = replay_through_a_coarse_index(
            stack.client("s3"),
            names.ml_artifacts_bucket,
            result["model_version"],
            scratch_database(stack, BENCH_DB),
            COARSE_LISTS,
            (DEFAULT_PROBES, 1),
        )
    finally:
        drop_scratch_database(stack, BENCH_DB)
    for probes, replay in coarse.items():
        say(
            f"the same events over a {COARSE_LISTS}-list index at probes {probes}: NDCG@{k} "
            f"{replay['served'][f'ndcg@{k}']:.3f} vs exact {replay['exact'][f'ndcg@{k}']:.3f}, "
            f"overlap {replay['overlap']:.3f}"
        )
    shipped = coarse[DEFAULT_PROBES]
    return [
        Entry(
            name=f"served top-{k} NDCG@{k} of held-out customers ({result['users']}), transformation Lambda",
            value=round(result["served"][f"ndcg@{k}"], 4),
            unit="",
            reference_name=f"the model's exact top {k} of the same events (numpy, every item)",
            reference=round(result["exact"][f"ndcg@{k}"], 4),
            target=NDCG_RATIO,
            better="higher",
            detail=result,
        ),
        Entry(
            name=f"served top-{k} items that are the model's exact top {k}",
            value=round(result["overlap"], 4),
            unit="share",
            reference_name="",
            reference=None,
            target=OVERLAP,
            better="higher",
            absolute=True,
            detail={"users": result["users"], "model_version": result["model_version"]},
        ),
        Entry(
            name=f"top-{k} NDCG@{k} through the Lambdas' search over a {COARSE_LISTS}-list index at probes "
            f"{DEFAULT_PROBES} (scratch copy of the version)",
            value=round(shipped["served"][f"ndcg@{k}"], 4),
            unit="",
            reference_name=f"the model's exact top {k} of the same events",
            reference=round(shipped["exact"][f"ndcg@{k}"], 4),
            target=NDCG_RATIO,
            better="higher",
            detail={**shipped, "at_probes_1": {key: coarse[1][key] for key in ("served", "exact", "overlap")}},
        ),
    ]
