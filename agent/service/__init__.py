"""The daemon and its wiring: config, devices, sampler, the live ledger, clock, logs and systemd."""
