"""Composition roots: the only modules that wire every layer together."""
