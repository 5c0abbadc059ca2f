"""The three local "clouds" of the demo and the benchmark, set up from a stack file.

:func:`create` reads ``Pulumi.<stack>.yaml`` through the same validation the Pulumi program
uses (``infra.config.parse``) and applies its storage settings to the emulators as far as
each one supports them:

- moto (S3 + KMS): a KMS key with rotation and an alias, a bucket with object lock
  (default retention in the stack's mode for ``lockDays``), versioning, SSE-KMS by default
  with that key, the public access block, bucket-owner-enforced ownership and one lifecycle
  rule per GFS tier prefix from ``infra.config_storage.lifecycle_plan``;
- gcp-storage-emulator: a bucket with uniform access, public access prevention, the retention
  policy, soft delete and the lifecycle rules;
- Azurite: a container, and blob soft delete on the account.

Each setting is read back after it is applied: what an emulator refused or silently dropped
is reported in :attr:`LocalCloud.unsupported`, never hidden. An RSA recovery key pair is
generated at run time into a caller-owned temporary directory; it is never committed. The
manifest signing key is an asymmetric KMS key in moto (``SIGN_VERIFY``, ``ECC_NIST_P256``), as
in the cloud; its public half is written beside the recovery key and trusted by the readers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from vo2dr.layout import intraday_container

from dev.servers import ROOT, Service

STACK_FILE = ROOT / "Pulumi.staging.yaml"
SECONDS_PER_DAY = 86400
PROVIDER_KEYS = ("aws:region", "gcp:project", "gcp:region", "azure-native:location")


def load_stack(stack_file: Path = STACK_FILE) -> Any:
    """The validated :class:`infra.config.StackConfig` of a stack file, as the program sees it."""
    from vo2dr.strategy import read_stack_file

    from infra import config as infra_config

    raw = read_stack_file(stack_file)
    doc = yaml.safe_load(Path(stack_file).read_text()) or {}
    providers = {k: str(v) for k, v in (doc.get("config") or {}).items() if k in PROVIDER_KEYS}
    return infra_config.parse(raw, stack=str(raw.get("environment", "")), providers=providers)


@dataclass
class LocalCloud:
    env: dict[str, str]  # everything `vo2dr` needs, except DATABASE_URL
    s3_bucket: str
    gcs_bucket: str
    azure_container: str
    kms_key_arn: str
    recovery_public_key: Path
    recovery_private_key: Path
    signing_key_arn: str = ""
    signing_public_keys: Path | None = None
    applied: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


class _Recorder:
    def __init__(self, applied: list[str], unsupported: list[str]) -> None:
        self.applied, self.unsupported = applied, unsupported

    def step(self, what: str, apply: Callable[[], Any], check: Callable[[], bool] | None = None,
             ) -> bool:
        """Apply one setting; read it back with ``check``. Records the outcome, never raises."""
        try:
            apply()
        except Exception as exc:  # noqa: BLE001 - any emulator refusal is a finding, not a crash
            self.unsupported.append(f"{what}: refused ({_short(exc)})")
            return False
        if check is not None:
            try:
                kept = check()
            except Exception as exc:  # noqa: BLE001
                self.unsupported.append(f"{what}: accepted, but cannot be read back "
                                        f"({_short(exc)})")
                return False
            if not kept:
                self.unsupported.append(f"{what}: accepted, but not kept")
                return False
        self.applied.append(what)
        return True


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def generate_recovery_key(directory: Path, bits: int = 3072) -> tuple[Path, Path]:
    """An RSA key pair for the offline recovery wrap: (public PEM, private PEM), mode 0600."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = directory / "recovery-private.pem"
    public = directory / "recovery-public.pem"
    for path, data in (
        (private, key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())),
        (public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)),
    ):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return public, private


# ---- S3 + KMS (moto) ------------------------------------------------------------------------

def s3_lifecycle_rules(cfg: Any) -> list[dict]:
    """The bucket's lifecycle, rule for rule as ``infra/aws/lifecycle.py`` declares it."""
    imm = cfg.immutability
    rules = []
    for tier in cfg.lifecycle:
        rules.append({
            "ID": f"gfs-{tier.tier}",
            "Status": "Enabled",
            "Filter": {"Prefix": tier.prefix},
            "Transitions": [{"Days": t.days, "StorageClass": t.storage_class}
                            for t in tier.transitions["aws"]],
            "Expiration": {"Days": tier.expire_days},
            "NoncurrentVersionExpiration": {"NoncurrentDays": imm.noncurrent_version_days},
            "AbortIncompleteMultipartUpload": {
                "DaysAfterInitiation": imm.abort_incomplete_upload_days},
        })
    rules.append({"ID": "expired-delete-markers", "Status": "Enabled", "Filter": {"Prefix": ""},
                  "Expiration": {"ExpiredObjectDeleteMarker": True}})
    return rules


def _aws_clients(env: dict[str, str]) -> tuple[Any, Any]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"))
    endpoint = env["AWS_ENDPOINT_URL"]
    return (session.client("s3", endpoint_url=endpoint),
            session.client("kms", endpoint_url=endpoint))


def setup_aws(cfg: Any, env: dict[str, str], rec: _Recorder) -> tuple[str, str]:
    s3, kms = _aws_clients(env)
    imm, tags = cfg.immutability, dict(cfg.tags)
    key = kms.create_key(
        Description=f"{cfg.name('backups')}: wraps the data key of every backup",
        KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
        Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])["KeyMetadata"]
    key_id, key_arn = key["KeyId"], key["Arn"]
    rec.applied.append(f"kms: key {key_id}")
    rec.step("kms: alias alias/" + cfg.name("backups"),
             lambda: kms.create_alias(AliasName=f"alias/{cfg.name('backups')}",
                                      TargetKeyId=key_id))
    rotation = cfg.keys.rotation_days if getattr(cfg, "keys", None) else None
    rec.step(f"kms: automatic rotation{f' every {rotation} days' if rotation else ''}",
             lambda: kms.enable_key_rotation(
                 KeyId=key_id, **({"RotationPeriodInDays": rotation} if rotation else {})),
             lambda: kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"])

    bucket = f"{cfg.name('backups')}-{cfg.aws.account_id}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    rec.applied.append(f"s3: bucket {bucket} with object lock")
    rec.step("s3: versioning",
             lambda: s3.put_bucket_versioning(Bucket=bucket,
                                              VersioningConfiguration={"Status": "Enabled"}),
             lambda: s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled")
    rec.step(f"s3: object lock default retention {imm.s3_mode} {imm.lock_days} days",
             lambda: s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
                 "ObjectLockEnabled": "Enabled",
                 "Rule": {"DefaultRetention": {"Mode": imm.s3_mode, "Days": imm.lock_days}}}),
             lambda: s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
             ["Rule"]["DefaultRetention"]["Days"] == imm.lock_days)
    rec.step("s3: default encryption SSE-KMS with the key (bucket key on)",
             lambda: s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
                 "Rules": [{"ApplyServerSideEncryptionByDefault": {
                     "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                     "BucketKeyEnabled": True}]}),
             lambda: s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
             ["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms")
    block = {k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                               "RestrictPublicBuckets")}
    rec.step("s3: public access block",
             lambda: s3.put_public_access_block(Bucket=bucket,
                                                PublicAccessBlockConfiguration=block),
             lambda: s3.get_public_access_block(Bucket=bucket)
             ["PublicAccessBlockConfiguration"] == block)
    rec.step("s3: ownership BucketOwnerEnforced (ACLs off)",
             lambda: s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
                 "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
             lambda: s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
             ["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced")
    rules = s3_lifecycle_rules(cfg)
    rec.step(f"s3: lifecycle, {len(rules)} rules (GFS tiers, noncurrent versions, "
             "incomplete multipart uploads, delete markers)",
             lambda: s3.put_bucket_lifecycle_configuration(
                 Bucket=bucket, LifecycleConfiguration={"Rules": rules}),
             lambda: len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])
             == len(rules))
    rec.step("s3: tags",
             lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging={
                 "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}))
    _probe_s3_lock(s3, bucket, rec)
    rec.unsupported.append("s3: TLS-only bucket policy not applied (the emulator serves plain "
                           "HTTP) and access logging not set up (no log bucket locally)")
    return bucket, key_arn


PROBE_KEY = "_probe/enforcement-check"


def _probe_s3_lock(s3: Any, bucket: str, rec: _Recorder) -> None:
    """Kept is not enforced: write a probe object and try to delete its locked version."""
    try:
        version = s3.put_object(Bucket=bucket, Key=PROBE_KEY, Body=b"probe")["VersionId"]
    except Exception as exc:  # noqa: BLE001
        rec.unsupported.append(f"s3: probe object refused ({_short(exc)})")
        return
    try:
        s3.delete_object(Bucket=bucket, Key=PROBE_KEY, VersionId=version)
    except Exception:  # noqa: BLE001 - refused: the lock is enforced
        rec.applied.append("s3: object lock enforced (a locked version could not be deleted)")
        s3.delete_object(Bucket=bucket, Key=PROBE_KEY, VersionId=version,
                         BypassGovernanceRetention=True)
    else:
        rec.unsupported.append("s3: object lock kept but not enforced by the emulator")


# ---- GCS (gcp-storage-emulator) -------------------------------------------------------------

def gcs_lifecycle_rules(cfg: Any) -> list[dict]:
    """As ``infra/gcp/storage.py`` declares them."""
    rules: list[dict] = []
    for tier in cfg.lifecycle:
        for step in tier.transitions["gcp"]:
            rules.append({"action": {"type": "SetStorageClass",
                                     "storageClass": step.storage_class},
                          "condition": {"age": step.days, "matchesPrefix": [tier.prefix]}})
        rules.append({"action": {"type": "Delete"},
                      "condition": {"age": tier.expire_days, "matchesPrefix": [tier.prefix],
                                    "isLive": True}})
    rules.append({"action": {"type": "Delete"},
                  "condition": {"daysSinceNoncurrentTime":
                                cfg.immutability.noncurrent_version_days, "isLive": False}})
    rules.append({"action": {"type": "AbortIncompleteMultipartUpload"},
                  "condition": {"age": cfg.immutability.abort_incomplete_upload_days}})
    return rules


def gcs_client(env: dict[str, str]) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=env.get("GOOGLE_CLOUD_PROJECT", "vo2max-dr-local"),
                          credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": env["STORAGE_EMULATOR_HOST"]})


def setup_gcp(cfg: Any, env: dict[str, str], rec: _Recorder) -> str:
    client = gcs_client(env)
    imm = cfg.immutability
    name = f"{cfg.name('backups')}-{cfg.gcp.project_number or 'local'}"
    bucket = client.bucket(name)
    bucket.labels = {k.lower(): str(v).lower() for k, v in cfg.tags.items()}
    client.create_bucket(bucket, location=cfg.gcp.location or "US")
    rec.applied.append(f"gcs: bucket {name}")

    def patch(**props: Any) -> Callable[[], None]:
        def apply() -> None:
            b = client.bucket(name)
            for k, v in props.items():
                b._patch_property(k, v)
            b.patch()
        return apply

    def current() -> dict:
        return client.get_bucket(name)._properties

    rec.step("gcs: uniform bucket-level access, public access prevention enforced",
             patch(iamConfiguration={"uniformBucketLevelAccess": {"enabled": True},
                                     "publicAccessPrevention": "enforced"}),
             lambda: current().get("iamConfiguration", {}).get("publicAccessPrevention")
             == "enforced")
    rec.step("gcs: object versioning",
             patch(versioning={"enabled": True}),
             lambda: current().get("versioning", {}).get("enabled") is True)
    rec.step(f"gcs: soft delete {imm.soft_delete_days} days",
             patch(softDeletePolicy={
                 "retentionDurationSeconds": str(imm.soft_delete_days * SECONDS_PER_DAY)}),
             lambda: int(current().get("softDeletePolicy", {})
                         .get("retentionDurationSeconds", 0))
             == imm.soft_delete_days * SECONDS_PER_DAY)
    rules = gcs_lifecycle_rules(cfg)
    rec.step(f"gcs: lifecycle, {len(rules)} rules (tier transitions, GFS expiry, incomplete "
             "uploads)",
             patch(lifecycle={"rule": rules}),
             lambda: len(current().get("lifecycle", {}).get("rule", [])) == len(rules))
    rec.unsupported.append(
        f"gcs: Object Retention Lock ({imm.lock_days} days, {imm.gcs_mode}) is sent with every "
        "upload (VO2DR_GCS_RETENTION_*) but the emulator neither stores nor enforces it, nor "
        "soft delete; the CMEK default key is not set (the emulator has no Cloud KMS)")
    return name


# ---- Azure (Azurite) ------------------------------------------------------------------------

def azure_service(env: dict[str, str]) -> Any:
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])


def setup_azure(cfg: Any, env: dict[str, str], rec: _Recorder) -> tuple[str, str]:
    from azure.storage.blob import RetentionPolicy

    service = azure_service(env)
    imm = cfg.immutability
    container = cfg.name("backups")
    service.create_container(container, metadata={k.replace("-", "_"): str(v)
                                                  for k, v in cfg.tags.items()})
    rec.applied.append(f"azure: container {container}")
    # The intraday tier's container beside it (vo2dr.stores.azure_blob routes those keys).
    service.create_container(intraday_container(container))
    rec.applied.append(f"azure: container {intraday_container(container)}")
    rec.step(f"azure: blob soft delete {imm.soft_delete_days} days",
             lambda: service.set_service_properties(delete_retention_policy=RetentionPolicy(
                 enabled=True, days=imm.soft_delete_days)),
             lambda: service.get_service_properties()["delete_retention_policy"].days
             == imm.soft_delete_days)
    rec.unsupported.append(
        "azure: versioning, the containers' immutability policies "
        f"({imm.lock_days} days, intraday {cfg.retention.intraday_days}, {imm.mode}), "
        "lifecycle management and the customer-managed key are management-plane (ARM) "
        "settings; Azurite emulates the data plane only")
    return container, f"{service.url.rstrip('/')}/{container}"


# ---- entry points ---------------------------------------------------------------------------

def create(services: list[Service], key_dir: Path, stack_file: Path = STACK_FILE,
           ) -> LocalCloud:
    """Set up buckets, keys and the recovery key pair; return what the job needs."""
    server_env: dict[str, str] = {}
    for svc in services:
        server_env.update(svc.env)
    cfg = load_stack(stack_file)
    applied: list[str] = []
    unsupported: list[str] = []
    rec = _Recorder(applied, unsupported)
    bucket, key_arn = setup_aws(cfg, server_env, rec)
    gcs_bucket = setup_gcp(cfg, server_env, rec)
    container, container_url = setup_azure(cfg, server_env, rec)
    public, private = generate_recovery_key(key_dir)
    applied.append(f"recovery key pair (RSA) in {key_dir}")
    signing_arn, signing_public = setup_signing(cfg, server_env, key_dir, rec)
    env = {
        **server_env,
        "VO2DR_ENVIRONMENT": cfg.environment,
        "VO2DR_S3_BUCKET": bucket,
        "VO2DR_GCS_BUCKET": gcs_bucket,
        **cfg.immutability.gcs_retention_env(),
        "VO2DR_AZURE_CONTAINER_URL": container_url,
        "VO2DR_KMS_KEY_ID": key_arn,
        "VO2DR_RECOVERY_PUBLIC_KEY": str(public),
        "VO2DR_SIGNING_KEY": signing_arn,
        "VO2DR_SIGNING_PUBLIC_KEYS": str(signing_public),
        "VO2DR_STACK_FILE": str(stack_file),
    }
    return LocalCloud(env, bucket, gcs_bucket, container, key_arn, public, private,
                      signing_key_arn=signing_arn, signing_public_keys=signing_public,
                      applied=applied, unsupported=unsupported)


def setup_signing(cfg: Any, env: dict[str, str], key_dir: Path,
                  rec: _Recorder) -> tuple[str, Path]:
    """The job's manifest signing key in KMS, and its public half as a PEM file (the stack's
    ``signingPublicKeys``, which readers trust)."""
    from cryptography.hazmat.primitives import serialization

    _, kms = _aws_clients(env)
    key = kms.create_key(Description=f"{cfg.name('signing')}: signs every backup manifest",
                         KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]
    der = kms.get_public_key(KeyId=key["Arn"])["PublicKey"]
    pem = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = key_dir / "signing-public.pem"
    path.write_bytes(pem)
    rec.applied.append(f"kms: manifest signing key {key['KeyId']} (ECC_NIST_P256, SIGN_VERIFY)")
    return key["Arn"], path


@dataclass(frozen=True)
class Listed:
    store: str
    key: str
    size: int


def list_objects(cloud: LocalCloud, prefix: str = "") -> Iterator[Listed]:
    """Every object in the three local stores, straight from the SDKs (independent of the
    job's own store code, so the demo and its test check the job from outside)."""
    env = cloud.env
    s3, _ = _aws_clients(env)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=cloud.s3_bucket,
                                                             Prefix=prefix):
        for obj in page.get("Contents", []):
            yield Listed("s3", obj["Key"], obj["Size"])
    for blob in gcs_client(env).list_blobs(cloud.gcs_bucket, prefix=prefix or None):
        yield Listed("gcs", blob.name, blob.size or 0)
    for name in (cloud.azure_container, intraday_container(cloud.azure_container)):
        container = azure_service(env).get_container_client(name)
        for blob in container.list_blobs(name_starts_with=prefix or None):
            yield Listed("azure", blob.name, blob.size)
