"""A small A2A agent for local development and tests (see agent.py)."""
