"""Request handlers: one module per concern (resources, patch, watch, scale, discovery)."""
