"""The rules' checks for AWS resources, one module per service."""
