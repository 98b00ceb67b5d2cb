"""Browser test: the data store (a private redis-server) goes away under an open dashboard
and comes back. The navbar says "reconnecting to the data store", the live socket is not
dropped, and the page takes the next pushed update — no reload."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from werkzeug.serving import make_server

from data.aggregator import Aggregator
from live.publisher import Publisher
from tests.conftest import PASSWORD
from tests.e2e.test_dashboards import GATE_RATE, _gate_events, _severe
from tests.private_redis import PrivateRedis, private_redis  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e


def test_out101_the_page_says_reconnecting_to_the_data_store_and_keeps_its_socket(
        dash_duo: Any, private_redis: PrivateRedis) -> None:
    srv = None
    try:
        app = private_redis.app(alerts=False, refresh_ms=600_000)
        svc = app.server.extensions["qms"]
        svc.users.add("exec-user", ["executive"], PASSWORD)
        svc.ingestor.ingest(_gate_events([True]), origin="e2e")
        Aggregator(svc.redis, svc.keys).drain()
        hub = app.server.extensions["qms_hub"]
        srv = make_server("127.0.0.1", 0, app.server, threaded=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        dash_duo.driver.get(f"http://127.0.0.1:{srv.server_port}/login")
        dash_duo.wait_for_element("#username", timeout=10).send_keys("exec-user")
        dash_duo.find_element("#password").send_keys(PASSWORD)
        dash_duo.find_element("#sign-in").click()
        dash_duo.wait_for_text_to_equal(GATE_RATE, "100.0%", timeout=20)
        dash_duo.wait_for_text_to_equal("#live-status", "● live", timeout=20)
        assert hub.connected.wait(5)
        received = dash_duo.driver.execute_script("return window.qmsLive.received")

        private_redis.shutdown()
        dash_duo.wait_for_text_to_equal("#live-status", "◌ reconnecting to the data store…", timeout=15)
        assert dash_duo.driver.execute_script("return window.qmsLive.dataStore") == "unavailable"
        # A callback now (a new timeframe) gets the 503: the page says the same, does not break.
        dash_duo.find_element("label[for='_dbcprivate_radioitems_dash-timeframe_input_7d']").click()
        dash_duo.wait_for_text_to_equal("#live-status", "◌ reconnecting to the data store…", timeout=5)
        assert dash_duo.driver.execute_script("return window.qmsLive.dataStore") == "unavailable"
        time.sleep(1)
        # While the store is away: the 503s, and Dash's renderer logging its failed callback.
        during = _severe(dash_duo.get_logs())
        assert during and all("503" in e or "dash_renderer" in e for e in during), during

        private_redis.start()
        dash_duo.wait_for_text_to_equal("#live-status", "● live", timeout=30)
        assert dash_duo.driver.execute_script("return window.qmsLive.transport") == "ws"
        svc.ingestor.ingest([{**_gate_events([False])[0], "id": "e2e-after-redis-restart"}], origin="e2e")
        Aggregator(svc.redis, svc.keys).drain()
        pub = Publisher(svc.redis, svc.keys, svc.engine)
        pub.publish_round(pub.version())
        pub.publish_slow()        # the page is on 7d (clicked above): its cards come once a minute, from the side thread
        dash_duo.wait_for_text_to_equal(GATE_RATE, "50.0%", timeout=15)
        live = dash_duo.driver.execute_script("return window.qmsLive")
        assert live["received"] > received
        assert live["connections"] == 1, "the socket was never dropped: the page opened one connection"
        assert _severe(dash_duo.get_logs()) == [], "nothing failed once the data store was back"
        hub.stop()
    finally:
        if srv is not None:
            srv.shutdown()
