"""The rules' checks for Azure resources, one module per service."""
