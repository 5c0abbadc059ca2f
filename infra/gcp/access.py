"""Who may touch the GCS secondary bucket: a writer and a reader service account, with roles on
the bucket only, and keyless federation that lets the AWS backup writer role act as the writer
service account, and the AWS monitor (status) and restore reader (drill) roles act as the
reader service account. No service-account key exists anywhere."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

# Create objects with a retention (Object Retention Lock, infra/gcp/storage.py), but no delete
# or overwrite (with uniform bucket-level access an overwrite needs storage.objects.delete), no
# shortening of an Unlocked retention (storage.objects.overrideUnlockedRetention), no bucket
# administration. No predefined role has setRetention without delete, hence a custom role.
CREATOR_PERMISSIONS = ("storage.objects.create", "storage.objects.setRetention")
# The writer also reads back: the job checks each upload against the object's CRC32C and lists
# the current window (standby --if-missing). It only ever sees ciphertext it cannot decrypt.
WRITER_READBACK_ROLE = "roles/storage.objectViewer"
# Get and list objects, for restores, verification and status checks.
READER_ROLE = "roles/storage.objectViewer"
# Lets a federated principal obtain access tokens for one service account.
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"

# Google's default mapping for AWS providers: the caller's ARN, and for role sessions the
# session-independent ``arn:aws:sts::<acct>:assumed-role/<role>`` (so any Lambda invocation of
# the role matches, whatever its session name).
AWS_ATTRIBUTE_MAPPING = {
    "google.subject": "assertion.arn",
    "attribute.aws_role": (
        "assertion.arn.contains('assumed-role')"
        " ? assertion.arn.extract('{account_arn}assumed-role/')"
        " + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/')"
        " : assertion.arn"),
}


def assumed_role_arn(role_arn: str) -> str:
    """``arn:aws:iam::<acct>:role[/path]/<name>`` -> ``arn:aws:sts::<acct>:assumed-role/<name>``,
    the form the role's sessions present to Google (the role path is not part of it)."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        raise ValueError(f"not an IAM role ARN: {role_arn!r}")
    partition, account, name = parts[1], parts[4], parts[5].rsplit("/", 1)[1]
    return f"arn:{partition}:sts::{account}:assumed-role/{name}"


@dataclass
class BucketAccessArgs:
    project: str
    bucket_name: pulumi.Input[str]
    writer_account_id: str
    reader_account_id: str
    # Custom role ids allow letters, digits, "_" and "."; unique per project, and reserved for
    # weeks after a delete.
    creator_role_id: str
    environment: str
    # The drill's result records (reports/<env>/drills/): the reader service account, which the
    # drill acts as, may create objects there and nowhere else (an IAM condition on the name).
    drill_records_prefix: str = ""


def object_prefix_condition(bucket_name: pulumi.Input[str],
                            prefix: str) -> pulumi.Output[str]:
    """CEL for "the object's name starts with ``prefix``" in ``bucket_name`` (IAM Conditions
    see an object as ``projects/_/buckets/<bucket>/objects/<name>``)."""
    return pulumi.Output.concat('resource.name.startsWith("projects/_/buckets/', bucket_name,
                                f'/objects/{prefix}")')


class BucketAccess(pulumi.ComponentResource):
    """The two service accounts, their bucket-scoped roles, and the project's custom creator
    role (granted on the bucket only)."""

    writer_email: pulumi.Output[str]
    reader_email: pulumi.Output[str]

    def __init__(self, name: str, args: BucketAccessArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:BucketAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.creator_role = gcp.projects.IAMCustomRole(
            f"{name}-creator-role", project=args.project, role_id=args.creator_role_id,
            title=f"vo2dr {args.environment} backup creator",
            description="Create backup objects with their retention; never delete, overwrite "
                        "or shorten a retention.",
            permissions=list(CREATOR_PERMISSIONS), stage="GA", opts=child)
        self.writer = gcp.serviceaccount.Account(
            f"{name}-writer", account_id=args.writer_account_id, project=args.project,
            display_name=f"vo2dr {args.environment} backup writer",
            description="Creates backup objects in the GCS secondary bucket and reads/lists "
                        "them back (ciphertext, to verify uploads); cannot delete or overwrite "
                        "them. Used through workload identity federation.",
            opts=child)
        self.reader = gcp.serviceaccount.Account(
            f"{name}-reader", account_id=args.reader_account_id, project=args.project,
            display_name=f"vo2dr {args.environment} restore reader",
            description="Reads and lists backup objects in the GCS secondary bucket for "
                        "restores, drills and status checks.",
            opts=child)
        # Bucket-level bindings only: neither account has any role on the project.
        self.writer_binding = gcp.storage.BucketIAMMember(
            f"{name}-writer-create", bucket=args.bucket_name, role=self.creator_role.name,
            member=self.writer.member, opts=child)
        self.writer_readback_binding = gcp.storage.BucketIAMMember(
            f"{name}-writer-readback", bucket=args.bucket_name, role=WRITER_READBACK_ROLE,
            member=self.writer.member, opts=child)
        self.reader_binding = gcp.storage.BucketIAMMember(
            f"{name}-reader-view", bucket=args.bucket_name, role=READER_ROLE,
            member=self.reader.member, opts=child)
        # The drill writes its result records as the reader: create (with retention) under
        # their prefix only. No delete, so no overwrite either (uniform bucket-level access).
        self.reader_drill_records_binding = None if not args.drill_records_prefix else \
            gcp.storage.BucketIAMMember(
                f"{name}-reader-drill-records", bucket=args.bucket_name,
                role=self.creator_role.name, member=self.reader.member,
                condition=gcp.storage.BucketIAMMemberConditionArgs(
                    title="drill records only",
                    description=f"create objects under {args.drill_records_prefix} only",
                    expression=object_prefix_condition(args.bucket_name,
                                                       args.drill_records_prefix)),
                opts=child)
        self.writer_email = self.writer.email
        self.reader_email = self.reader.email
        # projects/<project>/roles/<id>, for the standby job's own grant.
        self.creator_role_name = self.creator_role.name
        self.register_outputs({"writer_email": self.writer_email,
                               "reader_email": self.reader_email,
                               "creator_role_name": self.creator_role_name})


def attribute_condition(session_arns: list[str]) -> str:
    """The provider's CEL condition: the caller's session-independent role ARN is one of
    ``session_arns`` (every other identity of the AWS account is refused by the pool)."""
    if not session_arns:
        raise ValueError("at least one AWS role must be admitted")
    return "attribute.aws_role in [" + ", ".join(f"'{a}'" for a in session_arns) + "]"


def credential_config(audience: str, service_account_email: str) -> str:
    """The job's external-account credential configuration (google-auth reads it with
    ``google.auth.aws.Credentials.from_info``) for acting as ``service_account_email``. It
    holds no secret: the AWS credentials come from the Lambda environment at run time."""
    return json.dumps({
        "type": "external_account",
        "audience": audience,
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url":
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
            f"{service_account_email}:generateAccessToken",
        "credential_source": {
            "environment_id": "aws1",
            # google-auth fills {region} from AWS_REGION, which Lambda sets.
            "regional_cred_verification_url":
                "https://sts.{region}.amazonaws.com"
                "?Action=GetCallerIdentity&Version=2011-06-15",
        },
    }, sort_keys=True)


@dataclass
class AwsFederationArgs:
    project: str
    project_number: str
    pool_id: str
    provider_id: str
    aws_account_id: str
    # ``arn:aws:iam::<acct>:role/<name>`` of the AWS backup writer role.
    aws_writer_role_arn: pulumi.Input[str]
    # ``projects/<p>/serviceAccounts/<email>`` of the GCS writer service account.
    writer_service_account: pulumi.Input[str]
    writer_email: pulumi.Input[str]
    environment: str
    # The AWS roles that only read (key -> role ARN: the monitor role of the status check, the
    # restore reader role of the drill), each allowed to act as the reader service account.
    aws_reader_role_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    reader_service_account: pulumi.Input[str] | None = None
    reader_email: pulumi.Input[str] | None = None
    # The snapshot pruner (infra/gcp/pruner.py): the AWS pruner role acts as the pruner
    # service account, and only as it.
    aws_pruner_role_arn: pulumi.Input[str] | None = None
    pruner_service_account: pulumi.Input[str] | None = None
    pruner_email: pulumi.Input[str] | None = None


class AwsFederation(pulumi.ComponentResource):
    """Workload identity federation from AWS: the Lambda signs an STS GetCallerIdentity request
    with its role credentials, Google's STS verifies it with AWS, and the resulting federated
    principal may impersonate one service account. Only the job's own roles pass the
    provider's attribute condition; the backup writer role's principal set may impersonate the
    writer service account only, and the monitor and restore reader roles' principal sets the
    reader service account only (view and list, never create or delete)."""

    audience: pulumi.Output[str]
    credential_config: pulumi.Output[str]
    reader_credential_config: pulumi.Output[str] | None

    def __init__(self, name: str, args: AwsFederationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:AwsFederation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.aws_reader_role_arns and (args.reader_service_account is None
                                          or args.reader_email is None):
            raise ValueError("aws_reader_role_arns needs reader_service_account and reader_email")
        session_arn = pulumi.Output.from_input(args.aws_writer_role_arn).apply(assumed_role_arn)
        reader_sessions = {key: pulumi.Output.from_input(arn).apply(assumed_role_arn)
                           for key, arn in sorted(args.aws_reader_role_arns.items())}
        pruner_session = (None if args.aws_pruner_role_arn is None else
                          pulumi.Output.from_input(args.aws_pruner_role_arn).apply(
                              assumed_role_arn))
        admitted = [session_arn, *reader_sessions.values(),
                    *([pruner_session] if pruner_session is not None else [])]
        self.pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool", workload_identity_pool_id=args.pool_id, project=args.project,
            display_name=f"vo2dr {args.environment} AWS",
            description="AWS job roles of vo2max-dr that write, check and restore backups "
                        "in GCS", opts=child)
        self.provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider", project=args.project,
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=args.provider_id,
            display_name=f"AWS {args.aws_account_id}",
            # Only identities of this one AWS account are verified at all...
            aws=gcp.iam.WorkloadIdentityPoolProviderAwsArgs(account_id=args.aws_account_id),
            attribute_mapping=AWS_ATTRIBUTE_MAPPING,
            # ...and of those, only sessions of the job's roles are accepted.
            attribute_condition=pulumi.Output.all(*admitted).apply(
                lambda arns: attribute_condition(list(arns))),
            opts=child)

        def principal_set(session: pulumi.Output[str]) -> pulumi.Output[str]:
            return pulumi.Output.all(self.pool.workload_identity_pool_id, session).apply(
                lambda a: (f"principalSet://iam.googleapis.com/projects/{args.project_number}/"
                           f"locations/global/workloadIdentityPools/{a[0]}/"
                           f"attribute.aws_role/{a[1]}"))

        self.impersonation = gcp.serviceaccount.IAMMember(
            f"{name}-writer-impersonation", service_account_id=args.writer_service_account,
            role=WORKLOAD_IDENTITY_USER, member=principal_set(session_arn), opts=child)
        # One binding per read-only role, on the reader service account only.
        self.reader_impersonations = {
            key: gcp.serviceaccount.IAMMember(
                f"{name}-{key}-impersonation", service_account_id=args.reader_service_account,
                role=WORKLOAD_IDENTITY_USER, member=principal_set(session), opts=child)
            for key, session in reader_sessions.items()
        }
        self.pruner_impersonation = None
        if pruner_session is not None:
            if args.pruner_service_account is None or args.pruner_email is None:
                raise ValueError("aws_pruner_role_arn needs pruner_service_account and "
                                 "pruner_email")
            self.pruner_impersonation = gcp.serviceaccount.IAMMember(
                f"{name}-pruner-impersonation", service_account_id=args.pruner_service_account,
                role=WORKLOAD_IDENTITY_USER, member=principal_set(pruner_session), opts=child)
        self.audience = pulumi.Output.all(self.pool.workload_identity_pool_id,
                                          self.provider.workload_identity_pool_provider_id).apply(
            lambda a: (f"//iam.googleapis.com/projects/{args.project_number}/locations/global/"
                       f"workloadIdentityPools/{a[0]}/providers/{a[1]}"))
        self.credential_config = pulumi.Output.all(self.audience, args.writer_email).apply(
            lambda a: credential_config(a[0], a[1]))
        self.reader_credential_config = (
            pulumi.Output.all(self.audience, args.reader_email).apply(
                lambda a: credential_config(a[0], a[1]))
            if reader_sessions else None)
        self.pruner_credential_config = (
            pulumi.Output.all(self.audience, args.pruner_email).apply(
                lambda a: credential_config(a[0], a[1]))
            if pruner_session is not None else None)
        self.register_outputs({"audience": self.audience,
                               "credential_config": self.credential_config,
                               "reader_credential_config": self.reader_credential_config})
