"""The bridge: confirmed detections to the Pyronear alert API through a durable outbox."""
