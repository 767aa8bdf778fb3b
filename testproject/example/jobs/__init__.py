"""Job classes of the example app (discovered by kafka_jobs at start-up)."""
