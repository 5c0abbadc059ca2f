"""Who may touch the GCS secondary bucket: a writer and a reader service account, with roles on
the bucket only, and keyless federation that lets the AWS backup writer role act as
the writer service account. No service-account key exists anywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

# Create objects, but no delete or overwrite (with uniform bucket-level access an overwrite
# needs storage.objects.delete), and no bucket administration.
WRITER_ROLE = "roles/storage.objectCreator"
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
    environment: str


class BucketAccess(pulumi.ComponentResource):
    """The two service accounts and their bucket-scoped roles."""

    writer_email: pulumi.Output[str]
    reader_email: pulumi.Output[str]

    def __init__(self, name: str, args: BucketAccessArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:BucketAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.writer = gcp.serviceaccount.Account(
            f"{name}-writer", account_id=args.writer_account_id, project=args.project,
            display_name=f"vo2dr {args.environment} backup writer",
            description="Creates backup objects in the GCS secondary bucket; cannot read, "
                        "delete or overwrite them. Used through workload identity federation.",
            opts=child)
        self.reader = gcp.serviceaccount.Account(
            f"{name}-reader", account_id=args.reader_account_id, project=args.project,
            display_name=f"vo2dr {args.environment} restore reader",
            description="Reads and lists backup objects in the GCS secondary bucket for "
                        "restores, drills and status checks.",
            opts=child)
        # Bucket-level bindings only: neither account has any role on the project.
        self.writer_binding = gcp.storage.BucketIAMMember(
            f"{name}-writer-create", bucket=args.bucket_name, role=WRITER_ROLE,
            member=self.writer.member, opts=child)
        self.writer_readback_binding = gcp.storage.BucketIAMMember(
            f"{name}-writer-readback", bucket=args.bucket_name, role=WRITER_READBACK_ROLE,
            member=self.writer.member, opts=child)
        self.reader_binding = gcp.storage.BucketIAMMember(
            f"{name}-reader-view", bucket=args.bucket_name, role=READER_ROLE,
            member=self.reader.member, opts=child)
        self.writer_email = self.writer.email
        self.reader_email = self.reader.email
        self.register_outputs({"writer_email": self.writer_email,
                               "reader_email": self.reader_email})


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


class AwsFederation(pulumi.ComponentResource):
    """Workload identity federation from AWS: the Lambda signs an STS GetCallerIdentity request
    with its role credentials, Google's STS verifies it with AWS, and the resulting federated
    principal may impersonate the writer service account. Only the backup writer role passes
    the provider's attribute condition, and only its principal set holds the binding."""

    audience: pulumi.Output[str]
    credential_config: pulumi.Output[str]

    def __init__(self, name: str, args: AwsFederationArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:gcp:AwsFederation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        session_arn = pulumi.Output.from_input(args.aws_writer_role_arn).apply(assumed_role_arn)
        self.pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool", workload_identity_pool_id=args.pool_id, project=args.project,
            display_name=f"vo2dr {args.environment} AWS",
            description="AWS job roles of vo2max-dr that write backups to GCS", opts=child)
        self.provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider", project=args.project,
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=args.provider_id,
            display_name=f"AWS {args.aws_account_id}",
            # Only identities of this one AWS account are verified at all...
            aws=gcp.iam.WorkloadIdentityPoolProviderAwsArgs(account_id=args.aws_account_id),
            attribute_mapping=AWS_ATTRIBUTE_MAPPING,
            # ...and of those, only sessions of the backup writer role are accepted.
            attribute_condition=session_arn.apply(lambda arn: f"attribute.aws_role == '{arn}'"),
            opts=child)
        member = pulumi.Output.all(self.pool.workload_identity_pool_id, session_arn).apply(
            lambda a: (f"principalSet://iam.googleapis.com/projects/{args.project_number}/"
                       f"locations/global/workloadIdentityPools/{a[0]}/attribute.aws_role/{a[1]}"))
        self.impersonation = gcp.serviceaccount.IAMMember(
            f"{name}-writer-impersonation", service_account_id=args.writer_service_account,
            role=WORKLOAD_IDENTITY_USER, member=member, opts=child)
        self.audience = pulumi.Output.all(self.pool.workload_identity_pool_id,
                                          self.provider.workload_identity_pool_provider_id).apply(
            lambda a: (f"//iam.googleapis.com/projects/{args.project_number}/locations/global/"
                       f"workloadIdentityPools/{a[0]}/providers/{a[1]}"))
        # The job's external-account credential configuration (google-auth reads it with
        # ``google.auth.load_credentials_from_dict``). It holds no secret: the AWS credentials
        # come from the Lambda environment at run time.
        self.credential_config = pulumi.Output.all(self.audience, args.writer_email).apply(
            lambda a: json.dumps({
                "type": "external_account",
                "audience": a[0],
                "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
                "token_url": "https://sts.googleapis.com/v1/token",
                "service_account_impersonation_url":
                    "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
                    f"{a[1]}:generateAccessToken",
                "credential_source": {
                    "environment_id": "aws1",
                    # google-auth fills {region} from AWS_REGION, which Lambda sets.
                    "regional_cred_verification_url":
                        "https://sts.{region}.amazonaws.com"
                        "?Action=GetCallerIdentity&Version=2011-06-15",
                },
            }, sort_keys=True))
        self.register_outputs({"audience": self.audience,
                               "credential_config": self.credential_config})
