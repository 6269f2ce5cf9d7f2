"""Container runtimes the kubelet drives through ``interface.Runtime``."""
