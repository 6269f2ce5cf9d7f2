"""apiregistration.k8s.io: the APIServices that say which server serves each group version."""
