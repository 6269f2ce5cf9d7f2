"""Persistent volume controllers: PV binder, local-path provisioner, PVC and PV protection."""
