"""The ``oci`` runtime: pods as OCI containers under runc (see runtime.py).

Modules, in the order a pod goes through them: ``runtime`` (the per-pod
worker behind the Runtime protocol), ``containers`` (one run of a
container: start, hooks, exit, stop), ``images`` (what it asks of an image
store; ``busybox`` is the stand-in store), ``runc`` (runc's CLI, the shim
program, pinning namespaces from a thread with ``pinns``), ``gate`` (how many
sandboxes and containers are created at once), ``spec`` (config.json from
the pod spec), ``mounts`` (overlays, pinned namespaces, cgroups) and
``state`` (records on disk and in memory). ``shim.py`` is a program run by
the runtime, not imported (decision 0034). Without root, ``rootless`` changes the sandbox (``userns_sandbox.py``,
a program too), the rootfs and the spec (decision 0033).
"""
