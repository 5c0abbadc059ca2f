"""The Cloud KMS key the Cloud Run standby signs its manifests with (docs/backup-authenticity.md).

An ``ASYMMETRIC_SIGN`` key (``EC_SIGN_P256_SHA256``, HSM) in a key ring of its own. Exactly one
member may sign with it: the standby's service account, through an *authoritative* binding of
``roles/cloudkms.signer`` on this key (any other member of that role on the key is removed by
``pulumi up``), plus ``roles/cloudkms.publicKeyViewer`` so the job can check that its key is
the one readers trust. The GCS writer and reader service accounts, which the AWS roles
federate to, hold nothing on it: an AWS identity cannot sign as the standby.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

ALGORITHM = "EC_SIGN_P256_SHA256"
SIGNER_ROLE = "roles/cloudkms.signer"
PUBLIC_KEY_VIEWER_ROLE = "roles/cloudkms.publicKeyViewer"


@dataclass
class StandbySigningKeyArgs:
    project: str
    location: str  # the standby's region
    key_ring_name: str
    key_name: str
    protect: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    def version_name(self, version: int = 1) -> str:
        """The key version the standby signs with (``VO2DR_SIGNING_KEY``); known before the
        key exists, so the standby's environment needs no Output of it."""
        return (f"projects/{self.project}/locations/{self.location}/keyRings/"
                f"{self.key_ring_name}/cryptoKeys/{self.key_name}/cryptoKeyVersions/{version}")


class StandbySigningKey(pulumi.ComponentResource):
    """Key ring + ``EC_SIGN_P256_SHA256`` key; :meth:`allow_signer` grants the one signer."""

    key_id: pulumi.Output[str]
    version_name: str

    def __init__(self, name: str, args: StandbySigningKeyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:StandbySigningKey", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        self.key_ring = gcp.kms.KeyRing(f"{name}-ring", name=args.key_ring_name,
                                        location=args.location, project=args.project,
                                        opts=child)
        self.key = gcp.kms.CryptoKey(
            f"{name}-key", name=args.key_name, key_ring=self.key_ring.id,
            purpose="ASYMMETRIC_SIGN",
            version_template={"algorithm": ALGORITHM, "protection_level": "HSM"},
            labels=args.labels, opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.key_id = self.key.id
        self.version_name = args.version_name()
        self.register_outputs({"key_id": self.key_id})

    def allow_signer(self, member: pulumi.Input[str]) -> None:
        """Make ``member`` (``serviceAccount:…``) the only signer of this key."""
        child = pulumi.ResourceOptions(parent=self)
        self.signer = gcp.kms.CryptoKeyIAMBinding(
            f"{self._name}-signer", crypto_key_id=self.key.id, role=SIGNER_ROLE,
            members=[member], opts=child)
        self.public_key_viewer = gcp.kms.CryptoKeyIAMMember(
            f"{self._name}-public-key", crypto_key_id=self.key.id, role=PUBLIC_KEY_VIEWER_ROLE,
            member=member, opts=child)
