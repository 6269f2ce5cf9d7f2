"""Resources of the batch API group, one module per REST plural."""
