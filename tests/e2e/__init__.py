"""End-to-end tests: the real kubectl and the official client against `kajitori up`."""
