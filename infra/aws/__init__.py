"""AWS primary store: KMS key, S3 bucket (+ access-log bucket), lifecycle, IAM roles."""
