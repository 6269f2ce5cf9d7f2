"""Admission plugins, one module each, named as upstream's."""
