"""HTTP filters of the handler chain, one concern per module (composed in server/chain.py)."""
