"""Cluster DNS (CoreDNS's kubernetes plugin): Services, endpoints and pods as DNS records."""
