"""The AWS KMS keys the job signs with (see docs/backup-authenticity.md): one component for
both, a key per purpose.

- **Manifests** (``purpose="manifests"``): the backup job signs every manifest (and its
  attempt records). The key policy lets exactly one principal call ``kms:Sign``: the backup
  writer role, which no person may assume.
- **Records** (``purpose="records"``): the drill signs its drill record. The drill runs as the
  restore reader role, which operators also assume for a manual restore, so the role alone must
  not be able to sign. The key policy therefore names no signer itself: it delegates
  ``kms:Sign`` to IAM for that one role only (the account principal, conditioned on
  ``aws:PrincipalArn``), and the role's own policy (declared here) allows ``kms:Sign`` only
  with ``lambda:SourceFunctionArn`` equal to the drill function's ARN. Lambda puts that key in
  the request context of the calls the function's code makes, and nobody can set it otherwise
  (Lambda Developer Guide, "Using source function ARN to control function access behavior");
  it cannot be used in a resource-based policy such as a key policy, hence the delegation. An
  operator who assumes the role has no ``lambda:SourceFunctionArn`` and cannot sign; no other
  principal matches ``aws:PrincipalArn``. The record key is trusted for records only
  (``recordPublicKeys``): a manifest it signed is refused by every reader.

Both are asymmetric ``SIGN_VERIFY`` keys (``ECC_NIST_P256``): the private half never leaves
KMS. Nobody else may sign, not even the account's administrators (they administer the key
without using it, as for the backup key). Anyone in the account may read the public half
(``kms:GetPublicKey``); readers do not need it from KMS, since the stack's ``signingPublicKeys``
/ ``recordPublicKeys`` carry it.

Asymmetric KMS keys do not rotate automatically; a new key is a new public key to add to the
stack's list beside the old one (both trusted while old backups or records exist).
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
# One component type per purpose, so the manifest key keeps the URN it was deployed with.
PURPOSES = {"manifests": "vo2dr:aws:ManifestSigningKey", "records": "vo2dr:aws:RecordSigningKey"}


@dataclass(frozen=True)
class SigningKeyArgs:
    account_id: str
    alias: str  # "alias/<name>"
    description: str
    signer_role_arn: pulumi.Input[str]  # the one role whose principal may sign
    purpose: str = "manifests"  # a key of PURPOSES
    # When set, the role alone may not sign: only this Lambda function running as it (its ARN,
    # built from its deterministic name so that no Output of the function is needed), through
    # an IAM policy on the role (``signer_role_name``) pinned with lambda:SourceFunctionArn.
    signer_function_arn: str | None = None
    signer_role_name: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False


class SigningKey(pulumi.ComponentResource):
    """KMS ``SIGN_VERIFY`` P-256 key usable for signing by one role, or by one function.

    Outputs: ``arn``, ``alias_name``."""

    arn: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: SigningKeyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        if args.purpose not in PURPOSES:
            raise ValueError(f"signing key purpose {args.purpose!r}: one of {sorted(PURPOSES)}")
        if (args.signer_function_arn is None) != (args.signer_role_name is None):
            raise ValueError("signer_function_arn and signer_role_name go together")
        super().__init__(PURPOSES[args.purpose], name, None, opts)
        root = account_root(args.account_id)
        this_key = "*"  # in a key policy, "this key"
        if args.signer_function_arn is None:
            signer = statement("BackupWriterSigns", [*SIGN_ACTIONS, "kms:GetPublicKey"],
                               this_key, principal={"AWS": args.signer_role_arn})
        else:
            # lambda:SourceFunctionArn is not available in a key policy: delegate to the IAM
            # policies of the one role; its policy below pins kms:Sign to the function.
            signer = statement("SignerRolePolicyDecides", list(SIGN_ACTIONS), this_key,
                               principal={"AWS": root},
                               condition={"ArnEquals": {"aws:PrincipalArn": args.signer_role_arn}})
        policy = document(
            statement("AccountAdministersKeyWithoutSigning", SIGNING_ADMIN_ACTIONS, this_key,
                      principal={"AWS": root}),
            signer,
            # The public half is public: any principal of the account that IAM allows may read
            # it (operators fetch it once into the stack's list of trusted public keys).
            statement("AccountReadsThePublicKey", ["kms:GetPublicKey", "kms:DescribeKey"],
                      this_key, principal={"AWS": root}),
        )
        self.key = aws.kms.Key(
            f"{name}-key", description=args.description, key_usage=KEY_USAGE,
            customer_master_key_spec=KEY_SPEC, enable_key_rotation=False,
            bypass_policy_lockout_safety_check=False, policy=policy, tags=dict(args.tags),
            # A deleted signing key cannot sign any more; what it signed stays verifiable (the
            # public key is in config), but Pulumi must not delete it casually.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.alias = aws.kms.Alias(f"{name}-alias", name=args.alias,
                                   target_key_id=self.key.key_id,
                                   opts=pulumi.ResourceOptions(parent=self))
        self.signer_policy: aws.iam.RolePolicy | None = None
        if args.signer_function_arn is not None:
            self.signer_policy = aws.iam.RolePolicy(
                f"{name}-signer", role=args.signer_role_name, policy=document(statement(
                    "SignAsThisFunctionOnly", [*SIGN_ACTIONS, "kms:GetPublicKey"], self.key.arn,
                    condition={"ArnEquals": {
                        "lambda:SourceFunctionArn": args.signer_function_arn}})),
                opts=pulumi.ResourceOptions(parent=self))
        self.arn = self.key.arn
        self.alias_name = self.alias.name
        self.register_outputs({"arn": self.arn, "alias_name": self.alias_name})
