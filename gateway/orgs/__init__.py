"""Organizations: the tenant tree (one level of children), their status, kill switches and metadata."""
