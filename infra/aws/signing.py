"""The AWS KMS key the backup job signs every manifest with (see docs/backup-authenticity.md).

An asymmetric ``SIGN_VERIFY`` key (``ECC_NIST_P256``): its private half never leaves KMS, and
the key policy lets exactly one principal call ``kms:Sign``: the backup writer role. Nobody
else may sign, not even the account's administrators (they administer the key without using
it, as for the backup key), so a person or a role holding one store cannot produce a manifest
the readers accept. Anyone in the account may read the public half (``kms:GetPublicKey``);
readers do not need it from KMS, since the stack's ``signingPublicKeys`` carries it.

Asymmetric KMS keys do not rotate automatically; a new key is a new public key to add to
``signingPublicKeys`` beside the old one (both trusted while old backups exist).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.aws.keys import ADMIN_ACTIONS
from infra.aws.policies import account_root, document, statement

KEY_SPEC = "ECC_NIST_P256"
KEY_USAGE = "SIGN_VERIFY"
SIGN_ACTIONS = ("kms:Sign",)
# Administration of a signing key: the backup key's list, without rotation (asymmetric keys
# have none) and without grants (a grant could hand out kms:Sign outside the key policy).
SIGNING_ADMIN_ACTIONS = tuple(a for a in ADMIN_ACTIONS if "Rotat" not in a and "Grant" not in a)


@dataclass(frozen=True)
class ManifestSigningKeyArgs:
    account_id: str
    alias: str  # "alias/<name>"
    description: str
    signer_role_arn: pulumi.Input[str]  # the backup writer role: the only principal that signs
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False


class ManifestSigningKey(pulumi.ComponentResource):
    """KMS ``SIGN_VERIFY`` P-256 key usable for signing by the writer role only.

    Outputs: ``arn``, ``alias_name``."""

    arn: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: ManifestSigningKeyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:ManifestSigningKey", name, None, opts)
        root = account_root(args.account_id)
        this_key = "*"  # in a key policy, "this key"
        policy = document(
            statement("AccountAdministersKeyWithoutSigning", SIGNING_ADMIN_ACTIONS, this_key,
                      principal={"AWS": root}),
            statement("BackupWriterSigns", [*SIGN_ACTIONS, "kms:GetPublicKey"], this_key,
                      principal={"AWS": args.signer_role_arn}),
            # The public half is public: any principal of the account that IAM allows may read
            # it (operators fetch it once into signingPublicKeys).
            statement("AccountReadsThePublicKey", ["kms:GetPublicKey", "kms:DescribeKey"],
                      this_key, principal={"AWS": root}),
        )
        self.key = aws.kms.Key(
            f"{name}-key", description=args.description, key_usage=KEY_USAGE,
            customer_master_key_spec=KEY_SPEC, enable_key_rotation=False,
            bypass_policy_lockout_safety_check=False, policy=policy, tags=dict(args.tags),
            # A deleted signing key cannot sign new backups; old ones stay verifiable (the
            # public key is in config), but Pulumi must not delete it casually.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.alias = aws.kms.Alias(f"{name}-alias", name=args.alias,
                                   target_key_id=self.key.key_id,
                                   opts=pulumi.ResourceOptions(parent=self))
        self.arn = self.key.arn
        self.alias_name = self.alias.name
        self.register_outputs({"arn": self.arn, "alias_name": self.alias_name})
