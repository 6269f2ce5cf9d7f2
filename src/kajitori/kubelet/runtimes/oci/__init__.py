"""The ``oci`` runtime: pods as OCI containers under runc (see runtime.py).

Modules, in the order a pod goes through them: ``runtime`` (the per-pod
worker behind the Runtime protocol), ``containers`` (one run of a
container: start, hooks, exit, stop), ``images`` (what it asks of an image
store; ``busybox`` is the stand-in store), ``runc`` (runc's CLI, the shim and
pinns programs), ``spec`` (config.json from the pod spec), ``mounts``
(overlays, pinned namespaces, cgroups) and ``state`` (records on disk and in
memory). ``shim.py`` and ``pinns.py`` are programs run by the runtime, not
imported.
"""
