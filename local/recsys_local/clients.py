"""boto3 clients for the local endpoint, with moto's throwaway credentials."""

from __future__ import annotations

import boto3
from botocore.config import Config

from recsys.config import DEFAULT_REGION


def local_client(service: str, endpoint_url: str, region: str = DEFAULT_REGION, attempts: int = 3):
    """A boto3 client for the local endpoint with moto's throwaway credentials; ``attempts`` counts the first one
    (botocore's ``max_attempts`` counts retries only: ``max_attempts=1`` is two attempts)."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - moto accepts any key; not a secret
        config=Config(retries={"total_max_attempts": attempts}),
    )
