"""The hardware-in-the-loop bench: simulated devices and scenarios."""
