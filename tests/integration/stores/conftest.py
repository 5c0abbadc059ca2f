"""One store per cloud against the session's local servers (``cloud_env``), each in a fresh
bucket or container per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vo2dr.stores.base import BackupStore

from tests.integration.stores.cases import MAKERS, STORE_NAMES, StoreCase


@pytest.fixture(params=STORE_NAMES)
def case(request, cloud_env) -> Iterator[StoreCase]:
    yield MAKERS[request.param](cloud_env)


@pytest.fixture
def store(case) -> BackupStore:
    return case.store


@pytest.fixture
def s3_case(cloud_env) -> StoreCase:
    """For the checks only S3 has (SSE-KMS with our own key)."""
    return MAKERS["s3"](cloud_env)


@pytest.fixture
def gcs_case(cloud_env) -> StoreCase:
    return MAKERS["gcs"](cloud_env)
