"""WSGI entry point: `gunicorn app:server`, or `python cli.py serve` for the demo."""
import logging

from factory import create_app
from settings import Settings

settings = Settings.from_env()
# Under gunicorn nobody else configures Python's logging: without this the app's INFO lines
# (abandoned draws, the draw counters of callbacks/draw_stats.py, the alert leader) went nowhere.
if not logging.getLogger().handlers:
    logging.basicConfig(level=getattr(logging, settings.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)     # not a line per evaluation
app = create_app(settings)
server = app.server
if "qms_alerts" in server.extensions:      # each worker runs the schedule; one evaluates (leader lock)
    server.extensions["qms_alerts"].start()
