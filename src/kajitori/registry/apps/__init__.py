"""Resources of the apps API group, one module per REST plural."""
