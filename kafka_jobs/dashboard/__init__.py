"""The operations dashboard: pages in the Django admin to see workers, queues, dead letters and schedules, and
to act on them (replay dead letters, pause and resume queues).

Staff only, behind the permissions of the unmanaged ``Dashboard`` model: ``view_dashboard`` shows the pages,
``change_dashboard`` allows the actions. Every action is a CSRF-protected POST recorded in the admin log.
Pages read Kafka on each request and never a whole topic (see ``letters``); a broker that cannot be reached
gives a page with an error box.
"""
