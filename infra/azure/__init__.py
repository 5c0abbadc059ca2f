"""Azure Blob tertiary store: Key Vault key, storage account, container, identities."""
