"""The job as AWS infrastructure: Lambda functions for backup, status and drill, the secrets they
read, their dead-letter queues and logs, and the EventBridge Scheduler schedules that run them.

Every number comes from the stack file through ``infra.config``: the schedules from the data
classes' RPOs (``infra.runtime.eventbridge_cron``), the status interval and the drill cron from
``monitoring``, sizes, timeouts and retries from ``runtime``. The only constants here are AWS's
own limits.

The functions run as the AWS helper's job roles (``infra.aws.access``): backup as the backup
writer, status as the monitor, drill as the restore reader. Those roles are already named in
the key policy and trusted by the GCS workload identity pool, and they keep their store grants;
this component adds, per role, only what running as a Lambda needs: its own log group, its own
dead-letter queue, and the one secret its function reads. Secret reads are pinned to the
function with ``lambda:SourceFunctionArn``, so an operator who assumes the restore reader role
for a manual restore cannot read the database URL through it; the KMS ``Decrypt`` that Secrets
Manager makes for it is pinned to Secrets Manager (``kms:ViaService``) and to those secrets (the
``SecretARN`` encryption context).

With ``runtime.vpcSubnetIds`` / ``vpcSecurityGroupIds`` set (a private database), the backup and
drill functions run in those subnets. Lambda then manages their network interfaces with the
function's role, so that role gets what ``AWSLambdaVPCAccessExecutionRole`` grants for ENIs,
narrowed: creating, deleting and (un)assigning addresses only on this account's and region's
network interfaces and the configured subnets and security groups. The two Describe actions
have no resource-level permissions, so they alone take ``"Resource": "*"``, in a statement of
their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from vo2dr.exceptions import ConfigError

from infra.aws.policies import PARTITION, document, statement, trust

# What Lambda does with the function's role to attach it to a VPC (the ENI part of the managed
# AWSLambdaVPCAccessExecutionRole). The Describe actions support no resource-level permission.
VPC_ENI_ACTIONS = ("ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
                   "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses")
VPC_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
# AWS limits (not strategy): Lambda retries an asynchronous invocation at most twice, and a
# queue keeps a message at most 14 days (the DLQs keep failures as long as AWS allows).
LAMBDA_MAX_ASYNC_RETRIES = 2
NO_ASYNC_RETRY = ("backup", "drill")
SQS_MAX_RETENTION_SECONDS = 1_209_600  # 14 days
# Lambda refuses a function whose environment variables take more than 4 KB together ("Lambda
# quotas", AWS Lambda Developer Guide); CreateFunction measures the variables as one JSON
# object (its error quotes the "String measured").
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
# The encryption context Secrets Manager puts on every KMS call for a secret's value, as a
# condition key ("Secrets Manager encryption context", Secrets Manager user guide).
SECRET_CONTEXT_KEY = "kms:EncryptionContext:SecretARN"  # noqa: S105 (a key name)
# Function kinds; backups are one function per class and per application source.
JOBS = ("backup", "status", "drill", "prune")
HANDLERS = {
    "backup": "vo2dr.handlers.backup_handler",
    "status": "vo2dr.handlers.status_handler",
    "drill": "vo2dr.handlers.drill_handler",
    "prune": "vo2dr.handlers.prune_handler",
}


def environment_size(variables: Mapping[str, str]) -> int:
    """Bytes of a function's environment as Lambda measures them against its 4 KB limit."""
    return len(json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False).encode())


def checked_environment(function_name: str, variables: Mapping[str, str]) -> dict[str, str]:
    """``variables`` if Lambda accepts them, else a ConfigError naming the limit and the fix."""
    size = environment_size(variables)
    if size > LAMBDA_ENVIRONMENT_LIMIT_BYTES:
        largest = sorted(variables, key=lambda k: -len(str(variables[k])))[:3]
        raise ConfigError(
            f"Lambda function {function_name}: its environment variables take {size} bytes, "
            f"above Lambda's 4 KB limit ({LAMBDA_ENVIRONMENT_LIMIT_BYTES} bytes for all of a "
            f"function's variables together); the largest are {', '.join(largest)}. Fix: "
            "shorten them or ship the setting in the artifact, as the strategy is "
            "(infra/packaging.py STRATEGY_FILE)")
    return dict(variables)


def function_arn(region: str, account_id: str, name: str) -> str:
    """A function's ARN from its physical name: known before deploy, so policies can pin to it
    (``lambda:SourceFunctionArn``) without an Output of the function (and no cycle)."""
    return f"arn:{PARTITION}:lambda:{region}:{account_id}:function:{name}"


def schedule_group_arn(region: str, account_id: str, group_name: str) -> str:
    """The ARN EventBridge Scheduler sends as ``aws:SourceArn`` when it assumes a schedule's
    execution role: the schedule group's (Scheduler user guide, "Confused deputy prevention")."""
    return f"arn:{PARTITION}:scheduler:{region}:{account_id}:schedule-group/{group_name}"


def schedule_input(job: str, data_class: str | None = None) -> str:
    """The event each schedule sends: the backup handler reads the data class from it."""
    payload: dict[str, str] = {"job": job}
    if data_class is not None:
        payload["data_class"] = data_class
    return json.dumps(payload, sort_keys=True)


@dataclass(frozen=True)
class FunctionSpec:
    """One job function: its physical name, the role it runs as, and the secrets it reads
    (environment variable -> secret key in ``JobFunctionsArgs.secrets``)."""

    job: str
    name: str
    role_name: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    secret_env: Mapping[str, str] = field(default_factory=dict)
    # Settings only this function needs (e.g. the backup writer's cross-cloud identity).
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # A prefix of the backup bucket this function keeps its own small state in (the status
    # check's last alert, so it alerts on a change only): read, list and create there only.
    state_prefix: str | None = None
    # No reserved concurrency: each data class has its own backup function, so runs of
    # different classes never queue behind each other (with one function reserved at 1, a long
    # full dump held the 15-minute critical backup past its RPO), and a reservation would fail
    # on an account with the default low concurrency quota (Lambda keeps 100 unreserved). The
    # stack runs at most one execution per function at once (README: "Lambda concurrency").
    reserved_concurrency: int | None = None
    # Runs in the VPC of JobFunctionsArgs (when it names one): the functions that reach the
    # database.
    in_vpc: bool = False
    # The app's own secrets this function backs up (vo2dr.sources.config): read-only, exactly
    # these ARNs (each a name with Secrets Manager's "-??????" suffix).
    app_secret_arns: Sequence[str] = ()
    # The app's SSM parameters it backs up: exactly these parameters (ssm:GetParameters) and
    # exactly these paths (ssm:GetParametersByPath, recursive under the path).
    app_parameter_arns: Sequence[str] = ()
    app_parameter_path_arns: Sequence[str] = ()
    # A snapshot source's origins (vo2dr.snapshots): (bucket, prefix) pairs this function, and
    # no other, may list and read, never write.
    origins: Sequence[tuple[str, str]] = ()
    # Key patterns of the backup bucket this function alone may read (a snapshot source's own
    # manifests and indexes: its dedup base).
    read_objects: Sequence[str] = ()

    @property
    def kind(self) -> str:
        """``backup`` for every ``backup-<class>`` function, else the job itself."""
        return self.job.partition("-")[0]


@dataclass(frozen=True)
class JobFunctionsArgs:
    account_id: str
    region: str
    functions: Sequence[FunctionSpec]
    code: pulumi.Archive
    runtime: str  # "python3.11"
    architecture: str
    memory_mb: int
    timeout_seconds: int
    ephemeral_storage_mb: int
    log_retention_days: int
    max_retry_attempts: int
    max_event_age_seconds: int
    key_arn: pulumi.Input[str]  # the backup CMK: logs, queues and secrets are encrypted with it
    bucket_arn: pulumi.Input[str]  # the S3 backup bucket (for a function's state_prefix)
    # Secret values by key (e.g. "database-url"): each becomes a Secrets Manager secret.
    secrets: Mapping[str, pulumi.Input[str]]
    secret_prefix: str  # "vo2dr/<env>/"
    environment: Mapping[str, pulumi.Input[str]]  # non-secret job settings, for every function
    dlq_name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # The database's VPC, for the functions with ``in_vpc``: both set or both empty.
    vpc_subnet_ids: Sequence[str] = ()
    vpc_security_group_ids: Sequence[str] = ()


class JobFunctions(pulumi.ComponentResource):
    """Lambda functions with their log groups, secrets, failure queue and role additions.

    Outputs: ``function_names``, ``function_arns`` (job -> value), ``dlq_arn``,
    ``secret_arns`` (secret key -> ARN)."""

    def __init__(self, name: str, args: JobFunctionsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:JobFunctions", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        # Database URL (and the webhook) live in Secrets Manager under the backup CMK; the
        # functions get only the secret's ARN. The value stays a secret Output all the way.
        self.secrets: dict[str, aws.secretsmanager.Secret] = {}
        for key, value in sorted(args.secrets.items()):
            secret = aws.secretsmanager.Secret(
                f"{name}-{key}", name=f"{args.secret_prefix}{key}", kms_key_id=args.key_arn,
                description=f"vo2dr {key}, read by the job at run time", tags=tags, opts=child)
            aws.secretsmanager.SecretVersion(
                f"{name}-{key}-value", secret_id=secret.id,
                secret_string=pulumi.Output.secret(value), opts=child)
            self.secrets[key] = secret

        # Failed asynchronous invocations (after Lambda's own retries) land here, encrypted.
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq", name=args.dlq_name, kms_master_key_id=args.key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=SQS_MAX_RETENTION_SECONDS, tags=tags, opts=child)

        self.functions: dict[str, aws.lambda_.Function] = {}
        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        self.role_policies: dict[str, aws.iam.RolePolicy] = {}
        self.environment_sizes: dict[str, pulumi.Output[int]] = {}
        for spec in args.functions:
            self._function(name, spec, args, child, tags)

        self.function_names = {j: f.name for j, f in self.functions.items()}
        self.function_arns = {j: f.arn for j, f in self.functions.items()}
        self.dlq_arn = self.dlq.arn
        self.secret_arns = {k: s.arn for k, s in self.secrets.items()}
        self.register_outputs({"function_names": self.function_names,
                               "function_arns": self.function_arns,
                               "dlq_arn": self.dlq_arn, "secret_arns": self.secret_arns})

    def _function(self, name: str, spec: FunctionSpec, args: JobFunctionsArgs,
                  child: pulumi.ResourceOptions, tags: dict[str, str]) -> None:
        job = spec.job
        log_name = f"/aws/lambda/{spec.name}"
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-{job}-logs", name=log_name, retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn, tags=tags, opts=child)
        # Known before deploy, so the role policy and the scheduler role need no Output from
        # the function (and no dependency cycle).
        this_function = function_arn(args.region, args.account_id, spec.name)
        log_arn = (f"arn:{PARTITION}:logs:{args.region}:{args.account_id}:log-group:"
                   f"{log_name}:*")
        through = lambda svc: {"StringEquals": {  # noqa: E731
            "kms:ViaService": f"{svc}.{args.region}.amazonaws.com"}}
        statements = [
            statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_arn),
            # The on-failure destination is sent with the function's role, encrypted by SQS.
            statement("SendFailuresToDlq", ["sqs:SendMessage"], self.dlq.arn),
            statement("EncryptDlqMessagesThroughSqs", ["kms:Decrypt", "kms:GenerateDataKey"],
                      args.key_arn, condition=through("sqs")),
        ]
        if spec.state_prefix:
            statements += [
                statement("KeepOwnState", ["s3:GetObject", "s3:PutObject"],
                          pulumi.Output.concat(args.bucket_arn, "/", spec.state_prefix, "*")),
                statement("ListOwnState", ["s3:ListBucket"], args.bucket_arn, condition={
                    "StringLike": {"s3:prefix": [f"{spec.state_prefix}*"]}}),
                statement("StateUnderSseKmsThroughS3", ["kms:Decrypt", "kms:GenerateDataKey"],
                          args.key_arn, condition=through("s3")),
            ]
        vpc = spec.in_vpc and bool(args.vpc_subnet_ids)
        if vpc:
            ec2 = f"arn:{PARTITION}:ec2:{args.region}:{args.account_id}"
            statements += [
                statement("ManageVpcNetworkInterfaces", list(VPC_ENI_ACTIONS), [
                    f"{ec2}:network-interface/*",
                    *(f"{ec2}:subnet/{s}" for s in args.vpc_subnet_ids),
                    *(f"{ec2}:security-group/{g}" for g in args.vpc_security_group_ids)]),
                statement("DescribeVpcNetworkInterfaces", list(VPC_DESCRIBE_ACTIONS), "*"),
            ]
        secret_keys = sorted(set(spec.secret_env.values()))
        if secret_keys:
            # lambda:SourceFunctionArn is in the request context of the calls the function's
            # code makes (GetSecretValue), not of the KMS Decrypt that Secrets Manager makes on
            # its behalf: there the key is scoped to Secrets Manager and to these secrets by
            # the encryption context Secrets Manager always sends (SecretARN).
            secret_arns = [self.secrets[k].arn for k in secret_keys]
            statements += [
                statement("ReadOwnSecrets", ["secretsmanager:GetSecretValue"], secret_arns,
                          condition={"ArnEquals": {"lambda:SourceFunctionArn": this_function}}),
                # The encryption context is a string condition key (KMS: "kms:EncryptionContext:
                # context-key", String): StringEquals, not ArnEquals (IAM lint, parliament).
                statement("DecryptOwnSecretsThroughSecretsManager", ["kms:Decrypt"],
                          args.key_arn, condition={"StringEquals": {
                              **through("secretsmanager")["StringEquals"],
                              SECRET_CONTEXT_KEY: secret_arns}}),
            ]
        only_this_function = {"ArnEquals": {"lambda:SourceFunctionArn": this_function}}
        if spec.read_objects:
            statements.append(statement(
                "ReadOwnSnapshotIndexes", ["s3:GetObject"],
                [pulumi.Output.concat(args.bucket_arn, "/", k) for k in spec.read_objects],
                condition=only_this_function))
        if spec.origins:
            # Read-only: objects and their versions under each origin prefix, and listing of
            # those prefixes only.
            statements += [
                statement("ReadOriginObjects", ["s3:GetObject", "s3:GetObjectVersion"],
                          [f"arn:{PARTITION}:s3:::{b}/{p}*" for b, p in spec.origins],
                          condition=only_this_function),
                *(statement(f"ListOrigin{i}", ["s3:ListBucket"], f"arn:{PARTITION}:s3:::{b}",
                            condition={**only_this_function,
                                       "StringLike": {"s3:prefix": sorted(
                                           f"{p}*" for bb, p in spec.origins if bb == b)}})
                  for i, b in enumerate(sorted({b for b, _ in spec.origins}))),
            ]
        if spec.app_secret_arns:
            statements.append(statement(
                "ReadAppSecrets", ["secretsmanager:GetSecretValue"],
                list(spec.app_secret_arns), condition=only_this_function))
        if spec.app_parameter_arns:
            statements.append(statement(
                "ReadAppParameters", ["ssm:GetParameters"], list(spec.app_parameter_arns),
                condition={"ArnEquals": {"lambda:SourceFunctionArn": this_function}}))
        if spec.app_parameter_path_arns:
            statements.append(statement(
                "ReadAppParameterPaths", ["ssm:GetParametersByPath"],
                list(spec.app_parameter_path_arns),
                condition={"ArnEquals": {"lambda:SourceFunctionArn": this_function}}))
        policy = aws.iam.RolePolicy(f"{name}-{job}-runtime", role=spec.role_name,
                                    policy=document(*statements), opts=child)
        env = {k: pulumi.Output.from_input(v)
               for k, v in sorted({**args.environment, **spec.environment}.items())}
        for var, key in sorted(spec.secret_env.items()):
            env[var] = self.secrets[key].arn
        # Measured once every value is known (`pulumi preview` of an existing stack, `make
        # plan`): above Lambda's limit the program fails there, naming the limit and the fix,
        # and `pulumi up` stops at its preview instead of at CreateFunction. The variables stay
        # one Output each, so a first preview still shows every value that is known.
        self.environment_sizes[job] = pulumi.Output.all(**env).apply(
            lambda values, fn=spec.name: environment_size(checked_environment(fn, values)))
        function = aws.lambda_.Function(
            f"{name}-{job}",
            name=spec.name,
            description=f"vo2dr {job}",
            role=spec.role_arn,
            runtime=args.runtime,
            handler=HANDLERS[spec.kind],
            code=args.code,
            architectures=[args.architecture],
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            ephemeral_storage={"size": args.ephemeral_storage_mb},
            reserved_concurrent_executions=spec.reserved_concurrency,
            environment={"variables": env},
            vpc_config=({"subnet_ids": list(args.vpc_subnet_ids),
                         "security_group_ids": list(args.vpc_security_group_ids)}
                        if vpc else None),
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tags={**tags, "vo2dr-job": job},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, policy]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-{job}-async",
            function_name=function.name,
            # A failed backup or drill is not retried by Lambda: a retry is another full dump
            # (or restore) that queues behind reserved concurrency and delays the next window;
            # the next schedule, and the standby, are the retry. Status checks are cheap.
            maximum_retry_attempts=(0 if spec.kind in NO_ASYNC_RETRY
                                    else min(args.max_retry_attempts, LAMBDA_MAX_ASYNC_RETRIES)),
            maximum_event_age_in_seconds=args.max_event_age_seconds,
            destination_config={"on_failure": {"destination": self.dlq.arn}},
            opts=child,
        )
        self.functions[job] = function
        self.log_groups[job] = log_group
        self.role_policies[job] = policy


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule: which job, with which payload, when."""

    key: str  # "backup-critical", "status", "drill"
    job: str
    expression: str  # rate(...) or cron(...), EventBridge Scheduler syntax
    input: str
    description: str


@dataclass(frozen=True)
class JobSchedulesArgs:
    account_id: str
    region: str
    group_name: str
    role_name: str
    dlq_name: str
    schedules: Sequence[ScheduleSpec]
    function_arns: Mapping[str, pulumi.Input[str]]  # job -> function ARN
    key_arn: pulumi.Input[str]
    max_retry_attempts: int
    max_event_age_seconds: int
    tags: Mapping[str, str] = field(default_factory=dict)


class JobSchedules(pulumi.ComponentResource):
    """EventBridge Scheduler schedules (UTC), each with a retry policy and a dead-letter queue,
    and the one role Scheduler uses to invoke the functions.

    Outputs: ``schedule_names`` (key -> name), ``dlq_arn``, ``role_arn``."""

    def __init__(self, name: str, args: JobSchedulesArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vo2dr:aws:JobSchedules", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.group = aws.scheduler.ScheduleGroup(f"{name}-group", name=args.group_name,
                                                 tags=tags, opts=child)
        # Invocations Scheduler could not deliver (after its retries) land here.
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq", name=args.dlq_name, kms_master_key_id=args.key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=SQS_MAX_RETENTION_SECONDS, tags=tags, opts=child)
        # Confused deputy: only this account's schedules in this group may use the role.
        # Scheduler sends the schedule *group* ARN as aws:SourceArn (never a schedule's ARN),
        # so the condition names the group, exactly (schedule_group_arn).
        assume = document(trust("SchedulerOfThisGroup", {"Service": SCHEDULER_SERVICE}, {
            "StringEquals": {"aws:SourceAccount": args.account_id},
            "ArnEquals": {"aws:SourceArn": schedule_group_arn(args.region, args.account_id,
                                                               args.group_name)},
        }))
        invoked = sorted({s.job for s in args.schedules})
        self.role = aws.iam.Role(
            f"{name}-role", name=args.role_name, assume_role_policy=assume,
            description="EventBridge Scheduler: invokes the vo2dr functions, nothing else",
            tags=tags, opts=child)
        self.policy = aws.iam.RolePolicy(f"{name}-role-policy", role=self.role.id, policy=document(
            statement("InvokeJobFunctions", ["lambda:InvokeFunction"],
                      [args.function_arns[j] for j in invoked]),
            statement("SendUndeliveredToDlq", ["sqs:SendMessage"], self.dlq.arn),
            statement("EncryptDlqMessagesThroughSqs", ["kms:Decrypt", "kms:GenerateDataKey"],
                      args.key_arn, condition={"StringEquals": {
                          "kms:ViaService": f"sqs.{args.region}.amazonaws.com"}}),
        ), opts=child)
        self.schedules: dict[str, aws.scheduler.Schedule] = {}
        for spec in args.schedules:
            self.schedules[spec.key] = aws.scheduler.Schedule(
                f"{name}-{spec.key}",
                name=spec.key,
                group_name=self.group.name,
                description=spec.description,
                schedule_expression=spec.expression,
                schedule_expression_timezone="UTC",
                flexible_time_window={"mode": "OFF"},
                state="ENABLED",
                target={
                    "arn": args.function_arns[spec.job],
                    "role_arn": self.role.arn,
                    "input": spec.input,
                    "retry_policy": {
                        "maximum_retry_attempts": args.max_retry_attempts,
                        "maximum_event_age_in_seconds": args.max_event_age_seconds,
                    },
                    "dead_letter_config": {"arn": self.dlq.arn},
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
            )
        self.schedule_names = {k: s.name for k, s in self.schedules.items()}
        self.dlq_arn = self.dlq.arn
        self.role_arn = self.role.arn
        self.register_outputs({"schedule_names": self.schedule_names, "dlq_arn": self.dlq_arn,
                               "role_arn": self.role_arn})
