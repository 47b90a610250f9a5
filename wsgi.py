"""WSGI entry point: gunicorn wsgi:app"""

from matchmaking.app import create_app

app = create_app()
