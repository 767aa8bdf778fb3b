"""The transactional outbox: jobs written as rows in the caller's transaction, produced later by a relay.

``store`` writes the rows (called by the Kafka backend at enqueue), ``relay`` produces and deletes them
(``manage.py runkafkarelay``, or ``runkafkaworker --relay``), ``claim`` decides which relay produces which
rows, ``sender`` talks to the broker, ``wakeup`` tells a relay that rows were committed. docs/outbox.md
states the guarantees.
"""
