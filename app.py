"""WSGI entry point: `gunicorn app:server`, or `python cli.py serve` for the demo."""
from factory import create_app
from settings import Settings

app = create_app(Settings.from_env())
server = app.server
