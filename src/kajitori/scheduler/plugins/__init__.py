"""The default scheduler plugins, one module per upstream plugin (pkg/scheduler/framework/plugins)."""
