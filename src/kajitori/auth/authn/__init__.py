"""Authenticators: each turns one kind of credential into a user (upstream's pkg/authentication).

``union.py`` composes them as kube-apiserver does: x509 client certificates and
bearer tokens (static token file, service-account JWTs, bootstrap tokens) are
tried in turn; a request with no credentials at all is anonymous; a request
whose credentials nobody accepts is a 401. ``kajitori.auth.authenticator`` is
the one entry point the server uses.
"""
