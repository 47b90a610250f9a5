"""The Celery app of the workers: `celery -A workers.celery_app worker` (and `beat`)."""

from matchmaking.app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
