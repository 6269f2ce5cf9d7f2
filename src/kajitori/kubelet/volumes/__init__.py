"""The kubelet's volumes and container environment, independent of the runtime.

Upstream keeps these in the kubelet (pkg/kubelet/volumemanager,
pkg/volume/{secret,configmap,projected,downwardapi,emptydir,hostpath},
kubelet_pods.go's makeEnvironmentVariables), not in the container runtime:
the runtime only bind-mounts the directories the kubelet prepared. Here:

* ``source.py``: ``ObjectSource``, how the kubelet reads Secrets, ConfigMaps,
  claims and volumes and asks for service-account tokens (through its own
  client as ``system:node:<name>``);
* ``atomic_writer.py``: upstream's AtomicWriter (``..data`` symlink swap);
* ``downward.py``: downward API values (fieldRef, resourceFieldRef);
* ``env.py``: a container's environment (valueFrom, envFrom, service links,
  ``$(VAR)`` expansion);
* ``manager.py``: ``VolumeManager``, which sets up a pod's volumes under
  the pod's directory, keeps the API-backed ones current, and gives the
  runtime each container's mounts and environment.
"""
