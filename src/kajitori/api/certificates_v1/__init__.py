"""certificates.k8s.io/v1: CertificateSigningRequest validation and PEM helpers."""
