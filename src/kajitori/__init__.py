"""kajitori (舵取り, "helmsman"): Kubernetes, written in Python."""

__version__ = "0.1.0"
