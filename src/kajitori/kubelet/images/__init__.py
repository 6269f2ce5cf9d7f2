"""Images for the kubelet: pull from registries, keep them in one store, unpack root filesystems.

Reading order: ``reference`` (names) → ``credentials`` (image pull Secrets) →
``manifest`` (documents and platforms) → ``registry`` (the v2 HTTP client) →
``unpack`` (layers onto a rootfs) → ``store`` (blobs, rootfs, names, GC) →
``puller`` (pull policy, back-off, events: what the kubelet calls) →
``archive`` (``kajitori image load`` of docker-save and OCI archives).

The package talks to registries, never to the API server: Secrets arrive as
objects the kubelet read through ``kajitori.client``.
"""
