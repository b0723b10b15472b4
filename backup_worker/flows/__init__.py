"""The backup service's flows: one module per operation (docs/backups-design.md)."""
