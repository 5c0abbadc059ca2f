"""The job's settings, read once from environment variables (each has a matching CLI flag).

Endpoints are never settings of ours: the SDKs read ``AWS_ENDPOINT_URL``,
``STORAGE_EMULATOR_HOST`` and ``AZURE_STORAGE_CONNECTION_STRING`` themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from vo2dr.exceptions import ConfigError
from vo2dr.strategy import Strategy, load_strategy

# field name -> (environment variable, CLI flag)
VARIABLES = {
    "database_url": ("DATABASE_URL", "--database-url"),
    "database_url_secret": ("VO2DR_DATABASE_URL_SECRET", "--database-url-secret"),
    "environment": ("VO2DR_ENVIRONMENT", "--environment"),
    "s3_bucket": ("VO2DR_S3_BUCKET", "--s3-bucket"),
    "gcs_bucket": ("VO2DR_GCS_BUCKET", "--gcs-bucket"),
    # Object Retention Lock on every GCS upload (vo2dr.stores.gcs.Retention).
    "gcs_retention_days": ("VO2DR_GCS_RETENTION_DAYS", "--gcs-retention-days"),
    "gcs_retention_mode": ("VO2DR_GCS_RETENTION_MODE", "--gcs-retention-mode"),
    "azure_container_url": ("VO2DR_AZURE_CONTAINER_URL", "--azure-container-url"),
    "kms_key_id": ("VO2DR_KMS_KEY_ID", "--kms-key-id"),
    "recovery_public_key": ("VO2DR_RECOVERY_PUBLIC_KEY", "--recovery-public-key"),
    "drill_database_url": ("VO2DR_DRILL_DATABASE_URL", "--drill-database-url"),
    "alert_webhook": ("VO2DR_ALERT_WEBHOOK", "--alert-webhook"),
    "stack_file": ("VO2DR_STACK_FILE", "--stack-file"),
    "strategy_json": ("VO2DR_STRATEGY", "--strategy"),
    # Keyless sign-in from AWS to GCS and Azure (vo2dr.stores.credentials); not secrets.
    "gcs_credential_config": ("VO2DR_GCS_CREDENTIAL_CONFIG", "--gcs-credential-config"),
    "azure_tenant_id": ("VO2DR_AZURE_TENANT_ID", "--azure-tenant-id"),
    "azure_client_id": ("VO2DR_AZURE_CLIENT_ID", "--azure-client-id"),
}


@dataclass(frozen=True)
class Settings:
    database_url: str = ""
    database_url_secret: str = ""
    environment: str = ""
    s3_bucket: str = ""
    gcs_bucket: str = ""
    gcs_retention_days: str = ""
    gcs_retention_mode: str = ""  # Locked or Unlocked
    azure_container_url: str = ""
    kms_key_id: str = ""
    recovery_public_key: str = ""  # PEM text, or a path to a PEM file
    drill_database_url: str = ""
    alert_webhook: str = ""
    stack_file: str = ""
    strategy_json: str = ""
    gcs_credential_config: str = ""  # JSON external-account config (workload identity pool)
    azure_tenant_id: str = ""
    azure_client_id: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 overrides: Mapping[str, str | None] | None = None) -> Settings:
        """Environment first, then non-empty ``overrides`` (CLI flags) on top."""
        env = os.environ if env is None else env
        values = {name: env.get(var, "") for name, (var, _) in VARIABLES.items()}
        for name, value in (overrides or {}).items():
            if value:
                values[name] = value
        return cls(**values)

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            hints = ", ".join(f"{VARIABLES[n][0]} (or {VARIABLES[n][1]})" for n in missing)
            raise ConfigError(f"missing setting: {hints}")

    @property
    def enabled_stores(self) -> tuple[str, ...]:
        """Stores with a bucket or container configured, in primary-first order."""
        pairs = (("s3", self.s3_bucket), ("gcs", self.gcs_bucket),
                 ("azure", self.azure_container_url))
        return tuple(name for name, target in pairs if target)

    def strategy(self) -> Strategy:
        return load_strategy({"VO2DR_STRATEGY": self.strategy_json,
                              "VO2DR_STACK_FILE": self.stack_file})

    def recovery_public_key_pem(self) -> bytes:
        """The recovery public key as PEM bytes, from the setting's text or file."""
        self.require("recovery_public_key")
        value = self.recovery_public_key
        if value.lstrip().startswith("-----BEGIN"):
            return value.encode()
        try:
            return Path(value).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"VO2DR_RECOVERY_PUBLIC_KEY is neither a PEM key nor a readable file: {exc}"
            ) from exc

    def redacted(self) -> dict[str, str]:
        """For logs: every setting, with URLs that may carry credentials masked."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("database_url", "drill_database_url", "alert_webhook") and value:
                value = "***"
            if f.name in ("strategy_json", "gcs_credential_config") and value:
                value = "(json)"
            out[f.name] = value
        return out
