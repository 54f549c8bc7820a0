"""A sample's way out: stored, signed into messages, queued in the outbox, published over MQTT."""
