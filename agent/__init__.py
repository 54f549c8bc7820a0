"""The hpagent daemon: config, sampling, store, signing, outbox, MQTT and the CLI."""
