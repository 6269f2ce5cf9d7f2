"""The aggregation layer of the API server (upstream: kube-aggregator inside kube-apiserver).

Owns what makes ``apiregistration.k8s.io/v1 APIServices`` mean something:

- ``autoregister.py``: one local APIService per built-in group version and per
  CRD served version, Available with reason ``Local``;
- ``availability.py``: the Available condition of remote APIServices
  (``spec.service``), with upstream's reasons and messages;
- ``proxy.py``: requests under ``/apis/<group>/<version>`` of an available
  remote APIService go to a ready endpoint of its Service, as the front proxy
  (X-Remote-* headers, the front-proxy client certificate), streamed both ways;
- ``discovery.py``: the remote groups in ``/apis``, ``/apis/<group>`` and the
  aggregated discovery document, from the services' own discovery, cached;
- ``authentication_trust.py``: the ``kube-system/extension-apiserver-authentication``
  ConfigMap that tells aggregated servers whom to trust.

``aggregator.Aggregator`` composes them; ``cmd/apiserver.py`` starts it once
CRDs are served and ``server/app.py`` asks it first about ``/apis/`` paths.
"""
