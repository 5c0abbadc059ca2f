"""The CLI's settings as environment variables, for tests that run ``vo2dr`` commands against
the settings their fixtures built (one definition for every suite)."""

from __future__ import annotations

from vo2dr.settings import Settings

from tests import signing_keys


def store_env(s: Settings) -> dict[str, str]:
    """The environment, the three stores, the KMS key and the strategy."""
    return {"VO2DR_ENVIRONMENT": s.environment, "VO2DR_S3_BUCKET": s.s3_bucket,
            "VO2DR_GCS_BUCKET": s.gcs_bucket,
            "VO2DR_AZURE_CONTAINER_URL": s.azure_container_url,
            "VO2DR_KMS_KEY_ID": s.kms_key_id, "VO2DR_STRATEGY": s.strategy_json}


def job_env(s: Settings) -> dict[str, str]:
    """:func:`store_env` plus the recovery public key and the test signing keys: what a
    backup job needs."""
    return {**store_env(s), "VO2DR_RECOVERY_PUBLIC_KEY": s.recovery_public_key,
            **signing_keys.ENV}
