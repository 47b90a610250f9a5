"""Background workers: the Celery app and its thin tasks."""
