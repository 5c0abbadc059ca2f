"""Cloud KMS key that encrypts the GCS secondary bucket (CMEK)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumiverse_time as pulumi_time

SECONDS_PER_DAY = 86_400
# How long a new IAM grant may take to reach Cloud KMS: "Policy changes typically take effect
# within 2 minutes" (Google Cloud IAM, "Access change propagation"). Until then GCS refuses to
# create a bucket with this key as its default ("Permission denied on Cloud KMS key"), so the
# bucket waits this long after the grant, once, when both are created (first deploy).
GRANT_PROPAGATION = "120s"
# The only role the GCS service agent needs to use a CMEK: encrypt and decrypt with that key.
ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


@dataclass
class BucketKeyArgs:
    project: str
    # Cloud KMS location of the key ring. GCS requires it to match the bucket's location
    # (the multi-region ``US`` bucket needs an ``us`` key ring).
    location: str
    key_ring_name: str
    key_name: str
    rotation_days: int
    # ``serviceAccount:service-<number>@gs-project-accounts.iam.gserviceaccount.com``
    storage_agent_member: pulumi.Input[str]
    protect: bool = False
    labels: dict[str, str] = field(default_factory=dict)


class BucketKey(pulumi.ComponentResource):
    """A key ring and one symmetric crypto key, rotated automatically, usable by the GCS
    service agent of this project and by nobody else through this component."""

    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: BucketKeyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:BucketKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Key rings cannot be deleted in Cloud KMS; one per stack, named after it.
        self.key_ring = gcp.kms.KeyRing(
            f"{name}-ring", name=args.key_ring_name, location=args.location,
            project=args.project, opts=child)
        # Rotation makes new data use a new key version; old versions stay enabled so every
        # backup ever written stays readable. Protected in production: destroying the key
        # would make the bucket's objects unreadable.
        self.key = gcp.kms.CryptoKey(
            f"{name}-key", name=args.key_name, key_ring=self.key_ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=f"{args.rotation_days * SECONDS_PER_DAY}s",
            labels=args.labels,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        # Granted on this key only (not the ring or the project): the agent can use no other key.
        self.agent_grant = gcp.kms.CryptoKeyIAMMember(
            f"{name}-agent", crypto_key_id=self.key.id, role=ENCRYPTER_DECRYPTER,
            member=args.storage_agent_member, opts=child)
        # What uses the key (the bucket) depends on this, not on the grant: a Sleep only
        # waits when it is created, so later updates are not slowed down.
        self.ready = pulumi_time.Sleep(
            f"{name}-agent-propagation", create_duration=GRANT_PROPAGATION,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.agent_grant]))
        self.key_id = self.key.id
        self.register_outputs({"key_id": self.key_id})
