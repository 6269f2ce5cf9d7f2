"""Pieces shared by the workload controllers (ReplicaSet, Deployment, later StatefulSet, DaemonSet, Job)."""
