"""WSGI entry point: `gunicorn app:server`, or `python cli.py serve` for the demo."""
from factory import create_app
from settings import Settings

app = create_app(Settings.from_env())
server = app.server
if "qms_alerts" in server.extensions:      # each worker runs the schedule; one evaluates (leader lock)
    server.extensions["qms_alerts"].start()
