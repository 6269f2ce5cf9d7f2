"""Admission: plugins that may change (mutating) or refuse (validating) a write."""
