"""A small Django project that uses kafka_jobs: a view that enqueues jobs, an example job, routes.

``python -m testproject.demo`` runs it end to end; ``python -m testproject.devserver`` serves it.
"""
