"""The job's settings: every environment variable it reads, in one typed object, read once.

Each setting has an environment variable and a CLI flag (:data:`VARIABLES`, described in
:data:`DESCRIPTIONS`); each ``vo2dr`` subcommand offers the flags of the settings it uses
(:data:`COMMAND_SETTINGS`), so ``--help`` lists them. :meth:`Settings.validate` checks the
values (formats, pairs, the strategy) before anything touches the network, and the parsed
strategy is kept on the object (:meth:`Settings.strategy`), so the stack file is read and
validated once per run.

Where the strategy comes from: ``VO2DR_STRATEGY`` (JSON, set by the Pulumi program), else
``VO2DR_STACK_FILE``, else ``Pulumi.<VO2DR_ENVIRONMENT>.yaml`` found by walking up from the
working directory (a local run from the repository).

Endpoints are never settings of ours: the SDKs read ``AWS_ENDPOINT_URL``,
``STORAGE_EMULATOR_HOST`` and ``AZURE_STORAGE_CONNECTION_STRING`` themselves.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlparse

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
    # Manifest signatures (vo2dr.signing): the writer's signing key (a KMS key ARN, a Cloud
    # KMS key version or a PEM) and the PEM public keys every reader trusts.
    "signing_key": ("VO2DR_SIGNING_KEY", "--signing-key"),
    "signing_public_keys": ("VO2DR_SIGNING_PUBLIC_KEYS", "--signing-public-keys"),
    # Durable records (vo2dr.records): a key that may sign records but never manifests (the
    # drill's identity must not be able to sign a backup), and the public keys trusted for
    # records only, beside the manifest keys.
    "record_signing_key": ("VO2DR_RECORD_SIGNING_KEY", "--record-signing-key"),
    "record_public_keys": ("VO2DR_RECORD_PUBLIC_KEYS", "--record-public-keys"),
    "drill_database_url": ("VO2DR_DRILL_DATABASE_URL", "--drill-database-url"),
    "drill_database_url_secret": ("VO2DR_DRILL_DATABASE_URL_SECRET",
                                  "--drill-database-url-secret"),
    "alert_webhook": ("VO2DR_ALERT_WEBHOOK", "--alert-webhook"),
    "alert_webhook_secret": ("VO2DR_ALERT_WEBHOOK_SECRET", "--alert-webhook-secret"),
    "stack_file": ("VO2DR_STACK_FILE", "--stack-file"),
    "strategy_json": ("VO2DR_STRATEGY", "--strategy"),
    # Keyless sign-in from AWS to GCS and Azure (vo2dr.stores.credentials); not secrets.
    "gcs_credential_config": ("VO2DR_GCS_CREDENTIAL_CONFIG", "--gcs-credential-config"),
    "azure_tenant_id": ("VO2DR_AZURE_TENANT_ID", "--azure-tenant-id"),
    "azure_client_id": ("VO2DR_AZURE_CLIENT_ID", "--azure-client-id"),
    "azure_assertion": ("VO2DR_AZURE_ASSERTION", "--azure-assertion"),
    "spool_dir": ("VO2DR_SPOOL_DIR", "--spool-dir"),
    "status_state_file": ("VO2DR_STATUS_STATE_FILE", "--state-file"),
    "data_class": ("VO2DR_DATA_CLASS", "--data-class"),
    # Application sources (vo2dr.sources): the repository's read-only token, by secret id.
    "repository_token_secret": ("VO2DR_REPOSITORY_TOKEN_SECRET", "--repository-token-secret"),
    # The snapshot pruner (vo2dr.snapshots.prune): the stores' lock, and the mark-sweep grace.
    "lock_days": ("VO2DR_LOCK_DAYS", "--lock-days"),
    "prune_grace_hours": ("VO2DR_PRUNE_GRACE_HOURS", "--prune-grace-hours"),
}

DESCRIPTIONS = {
    "database_url": "the database to back up (postgresql://user@host:5432/dbname)",
    "database_url_secret": "Secrets Manager id holding DATABASE_URL (a URL, JSON with url, or "
                           "the RDS shape); used when DATABASE_URL is not set",
    "environment": "staging, production, ...: the backups' key prefix and the stack file",
    "s3_bucket": "the S3 bucket (enables the S3 store)",
    "gcs_bucket": "the GCS bucket (enables the GCS store)",
    "gcs_retention_days": "Object Retention Lock days on each GCS upload (with the mode)",
    "gcs_retention_mode": "Locked or Unlocked (with the days)",
    "azure_container_url": "https://<account>.blob.core.windows.net/<container> (enables "
                           "the Azure store)",
    "kms_key_id": "the KMS key ARN: envelope encryption and SSE-KMS (writing only)",
    "recovery_public_key": "the offline recovery public key: PEM text or a file path",
    "signing_key": "the key manifests are signed with: a KMS key ARN, a Cloud KMS key version "
                   "or a PEM (text or file)",
    "signing_public_keys": "the PEM public keys (text or file) a backup must be signed by",
    "record_signing_key": "the key the drill signs its record with, if not VO2DR_SIGNING_KEY "
                          "(a KMS key ARN, a Cloud KMS key version or a PEM)",
    "record_public_keys": "PEM public keys (text or file) trusted for records only, never "
                          "for manifests",
    "drill_database_url": "the scratch server the drill restores into",
    "drill_database_url_secret": "Secrets Manager id holding the drill's database URL",
    "alert_webhook": "Slack-compatible webhook URL posted on a breach or a recovery",
    "alert_webhook_secret": "Secrets Manager id holding the alert webhook URL",
    "stack_file": "Pulumi.<stack>.yaml to read the strategy from (default: "
                  "Pulumi.<environment>.yaml found from the working directory up)",
    "strategy_json": "the strategy as JSON (set by the Pulumi program)",
    "gcs_credential_config": "workload identity federation config from AWS (Pulumi output "
                             "gcsCredentialConfig)",
    "azure_tenant_id": "Entra tenant id for keyless Azure sign-in (with the client id)",
    "azure_client_id": "Entra client id for keyless Azure sign-in (with the tenant id)",
    "azure_assertion": "where the Azure assertion comes from: aws (default) or gcp",
    "spool_dir": "where a restore spools the verified dump (default: the temp dir)",
    "status_state_file": "where status keeps its alert state (default: "
                         ".vo2dr/status-<environment>.json)",
    "data_class": "the data class to back up (Cloud Run job)",
    "repository_token_secret": "Secrets Manager id holding the app repository's read-only "
                               "token (code and config sources)",
    "lock_days": "the stack's immutability.lockDays: content is pruned only after its lock",
    "prune_grace_hours": "hours between a prune mark and its sweep (default 12; longer than "
                         "the longest snapshot run)",
}

# The settings each use of the stores needs: reading (list, verify, restore, status, drill)
# never needs the KMS key or the retention lock, which only writes use.
STORE_READ_SETTINGS = ("s3_bucket", "gcs_bucket", "azure_container_url",
                       "gcs_credential_config", "azure_tenant_id", "azure_client_id",
                       "azure_assertion")
STORE_WRITE_SETTINGS = (*STORE_READ_SETTINGS, "kms_key_id", "gcs_retention_days",
                        "gcs_retention_mode")
STRATEGY_SETTINGS = ("stack_file", "strategy_json")
# What a reader trusts (vo2dr.trust): the signing public keys, and the only KMS key and
# recovery key a body may be decrypted with.
TRUST_SETTINGS = ("signing_public_keys", "kms_key_id", "recovery_public_key")

# subcommand -> the settings it reads (its --help lists exactly these).
COMMAND_SETTINGS: dict[str, tuple[str, ...]] = {
    "backup": ("environment", "database_url", "database_url_secret", "recovery_public_key",
               "signing_key", "signing_public_keys", "repository_token_secret",
               *STRATEGY_SETTINGS, *STORE_WRITE_SETTINGS),
    "list": ("environment", "signing_public_keys", *STORE_READ_SETTINGS),
    "verify": ("environment", *TRUST_SETTINGS, *STORE_READ_SETTINGS),
    "restore": ("environment", "spool_dir", *TRUST_SETTINGS, *STORE_READ_SETTINGS),
    "drill": ("environment", "drill_database_url", "drill_database_url_secret", "spool_dir",
              "signing_key", "record_signing_key", *TRUST_SETTINGS, *STRATEGY_SETTINGS,
              *STORE_WRITE_SETTINGS),
    # status also reports the drill server's version when it knows the server.
    "status": ("environment", "alert_webhook", "alert_webhook_secret", "status_state_file",
               "drill_database_url", "drill_database_url_secret", "signing_public_keys",
               *STRATEGY_SETTINGS, *STORE_READ_SETTINGS),
    # the report reads the stack file (VO2DR_STRATEGY lacks the lifecycle and schedules)
    "report": ("environment", "stack_file", "signing_public_keys", "record_public_keys",
               *STORE_READ_SETTINGS),
    # The pruner reads (and decrypts) indexes, writes prune plans and deletes content only.
    "prune": ("environment", "lock_days", "prune_grace_hours", *TRUST_SETTINGS,
              *STORE_READ_SETTINGS),
}

# URL-valued settings that may carry credentials: masked in logs.
_MASKED = ("database_url", "drill_database_url", "alert_webhook")
_JSON = ("strategy_json", "gcs_credential_config")
_ASSERTION_SOURCES = ("aws", "gcp")
# S3 and GCS bucket names: lower-case letters, digits, dots, dashes (GCS also underscores).
_BUCKET = re.compile(r"[a-z0-9]([a-z0-9._-]{0,220}[a-z0-9])?")


def hint(name: str) -> str:
    """``VO2DR_X (or --x)``: how a user sets the setting ``name``."""
    var, flag = VARIABLES[name]
    return f"{var} (or {flag})"


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
    signing_key: str = ""
    signing_public_keys: str = ""  # PEM text (one or more keys), or a path to a PEM file
    record_signing_key: str = ""
    record_public_keys: str = ""  # like signing_public_keys, trusted for records only
    drill_database_url: str = ""
    drill_database_url_secret: str = ""
    alert_webhook: str = ""
    alert_webhook_secret: str = ""
    stack_file: str = ""
    strategy_json: str = ""
    gcs_credential_config: str = ""  # JSON external-account config (workload identity pool)
    azure_tenant_id: str = ""
    azure_client_id: str = ""
    azure_assertion: str = ""  # aws (default) or gcp
    spool_dir: str = ""
    status_state_file: str = ""
    data_class: str = ""
    repository_token_secret: str = ""
    lock_days: str = ""
    prune_grace_hours: str = ""

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
            raise ConfigError(f"missing setting: {', '.join(hint(n) for n in missing)}")

    @property
    def enabled_stores(self) -> tuple[str, ...]:
        """Stores with a bucket or container configured, in primary-first order."""
        pairs = (("s3", self.s3_bucket), ("gcs", self.gcs_bucket),
                 ("azure", self.azure_container_url))
        return tuple(name for name, target in pairs if target)

    # -- the strategy, parsed once ------------------------------------------------------------

    def strategy(self) -> Strategy:
        """The validated strategy (read and parsed on the first call, then kept)."""
        return self._strategy

    @functools.cached_property
    def _strategy(self) -> Strategy:
        stack_file = self.stack_file or self._found_stack_file
        if not (self.strategy_json or stack_file):
            where = (f"no Pulumi.{self.environment}.yaml in {Path.cwd()} or above"
                     if self.environment else "VO2DR_ENVIRONMENT is not set either")
            raise ConfigError(
                "no strategy: set VO2DR_STRATEGY (JSON, set by the Pulumi program) or "
                f"VO2DR_STACK_FILE (path to Pulumi.<stack>.yaml), or run from the repository "
                f"with VO2DR_ENVIRONMENT set ({where})")
        return load_strategy({"VO2DR_STRATEGY": self.strategy_json,
                              "VO2DR_STACK_FILE": stack_file})

    @functools.cached_property
    def _found_stack_file(self) -> str:
        if self.strategy_json or self.stack_file or not self.environment:
            return ""
        found = find_stack_file(self.environment)
        return str(found) if found else ""

    # -- validation, before any network call ----------------------------------------------------

    def validate(self, *, required: Iterable[str] = (), strategy: bool = False,
                 names: Iterable[str] | None = None) -> None:
        """Check the settings' values without touching the network: every name in
        ``required`` is set (or has its ``*_secret`` partner), the environment, URLs, bucket
        names and pairs are well-formed, and with ``strategy`` the strategy parses. Raises
        :class:`ConfigError` naming the setting and the fix. ``names`` (a command's
        :data:`COMMAND_SETTINGS`) limits the database URL checks to the URLs the command reads:
        checking one means importing psycopg, which a command without a database skips."""
        checked = None if names is None else set(names)
        missing = [n for n in required if not getattr(self, n)
                   and not getattr(self, f"{n}_secret", "")]
        if missing:
            raise ConfigError(f"missing setting: {', '.join(hint(n) for n in missing)}")
        if self.environment and not re.fullmatch(r"[a-z0-9-]+", self.environment):
            raise ConfigError(f"VO2DR_ENVIRONMENT {self.environment!r} must be lower-case "
                              "letters, digits and dashes (staging, production)")
        for name in ("database_url", "drill_database_url"):
            if getattr(self, name) and (checked is None or name in checked):
                check_database_url(getattr(self, name), VARIABLES[name][0])
        for name in ("s3_bucket", "gcs_bucket"):
            value = getattr(self, name)
            if value and not _BUCKET.fullmatch(value):
                raise ConfigError(f"{VARIABLES[name][0]} {value!r} is not a bucket name: give "
                                  "the bare name (lower-case, no s3:// or gs:// prefix)")
        if self.azure_container_url:
            check_container_url(self.azure_container_url)
        if self.alert_webhook and not _is_http_url(self.alert_webhook):
            raise ConfigError("VO2DR_ALERT_WEBHOOK is not an http(s) URL: set it to the chat "
                              "webhook's https://... address")
        if bool(self.azure_tenant_id) != bool(self.azure_client_id):
            missing_id = "VO2DR_AZURE_CLIENT_ID" if self.azure_tenant_id else \
                "VO2DR_AZURE_TENANT_ID"
            raise ConfigError(f"{missing_id} is not set: keyless Azure sign-in needs both "
                              "VO2DR_AZURE_TENANT_ID and VO2DR_AZURE_CLIENT_ID")
        if self.azure_assertion and self.azure_assertion not in _ASSERTION_SOURCES:
            raise ConfigError(f"VO2DR_AZURE_ASSERTION is {self.azure_assertion!r}: use 'aws' "
                              "(Lambda, the default) or 'gcp' (the Cloud Run standby)")
        if strategy:
            self.strategy()

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
            if f.name in _MASKED and value:
                value = "***"
            if f.name in _JSON and value:
                value = "(json)"
            if "PRIVATE KEY" in value:  # a local PEM signing key given as text
                value = "(private key)"
            out[f.name] = value
        return out


def find_stack_file(environment: str, start: Path | None = None) -> Path | None:
    """``Pulumi.<environment>.yaml`` in ``start`` (default: the working directory) or the
    nearest parent holding one."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / f"Pulumi.{environment}.yaml"
        if candidate.is_file():
            return candidate
    return None


def check_database_url(url: str, what: str) -> None:
    """A PostgreSQL URL or conninfo string that names a database. The message never repeats
    the value: it may hold a password."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    fix = "use postgresql://user@host:5432/dbname"
    if "://" in url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{what} is not a PostgreSQL URL (its scheme must be "
                          f"postgresql://): {fix}")
    try:
        params = conninfo_to_dict(url)
    except ProgrammingError:
        raise ConfigError(f"{what} is not a PostgreSQL URL or conninfo string: {fix}") from None
    if not params.get("dbname"):
        raise ConfigError(f"{what} names no database: add /<dbname> to the URL ({fix})")


def check_container_url(url: str) -> None:
    """An Azure container URL: ``https://<account>.blob.core.windows.net/<container>``, or an
    emulator's ``http://host:port/<account>/<container>``."""
    parsed = urlparse(url)
    if not _is_http_url(url) or not parsed.path.strip("/"):
        raise ConfigError(f"VO2DR_AZURE_CONTAINER_URL {url!r} is not a container URL: use "
                          "https://<account>.blob.core.windows.net/<container> (Pulumi output "
                          "azureContainerUrl)")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"VO2DR_AZURE_CONTAINER_URL {url!r} has an invalid port") from None


def _is_http_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)
