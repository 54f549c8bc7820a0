"""hpagent drivers: bytes from a device -> readings in the vocabulary. Never imports agent."""
