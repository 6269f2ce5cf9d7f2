"""Resources of the core ("") API group: pods, nodes, services, endpoints, ... (one module each)."""
