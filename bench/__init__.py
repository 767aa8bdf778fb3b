"""The kafka_jobs benchmark: ``python -m bench`` (see README "Benchmark").

Measures raw confluent-kafka baselines and kafka_jobs enqueue, processing, latency and memory in one run,
against a broker it starts itself (or ``KAFKA_BOOTSTRAP_SERVERS``).
"""
