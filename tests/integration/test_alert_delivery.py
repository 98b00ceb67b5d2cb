"""Alert delivery end to end: a real SMTP server (aiosmtpd) and a real HTTP receiver on
loopback get exactly the notifications expected, once, even from two Notifiers.

apprise has no setting for Slack's or PagerDuty's endpoint, so those two plugins are
pointed at the loopback receiver by patching their endpoint constants; everything else
(payload, headers, success check) is apprise's real code. apprise's politeness delay
between two messages of one email service (5.5 s) is turned off where a test sends two.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Iterator

import apprise.plugins.email.base as apprise_email
import apprise.plugins.pagerduty as apprise_pagerduty
import apprise.plugins.slack as apprise_slack
import pytest
import redis
from aiosmtpd.controller import Controller

from alerts.notify import (CHANNEL_STATUS, DELIVERIES, FAILURES, ChannelConfigError, Notifier, channel_urls,
                           load_channels, smtp_url, webhook_json_url)
from tests.conftest import _free_port
from tests.receivers import MailSink, Receiver, wait_until

P = "qmstest"
BASE_URL = "http://qms.example.com:8050"
SLACK_PATH = "/slack/services"
PAGERDUTY_PATH = "/pagerduty/v2/enqueue"


def transition(to: str = "firing", at: int = 1_767_225_600_000, **changes: Any) -> dict[str, Any]:
    """A transition as alerts.evaluate makes them."""
    return {"id": "High Queue Depth{queue=code_review}", "rule": "High Queue Depth",
            "labels": {"queue": "code_review"}, "severity": "warning",
            "from": "pending" if to == "firing" else "firing", "to": to, "at": at, "value": 17.0,
            "threshold_text": "queue_depth > 15", "notify": True, "since": at - 300_000,
            "description": "", "dashboard": "operations", **changes}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    rec = Receiver()
    monkeypatch.setattr(apprise_slack.NotifySlack, "webhook_url", rec.url + SLACK_PATH)
    monkeypatch.setitem(apprise_pagerduty.PAGERDUTY_API_LOOKUP, apprise_pagerduty.PagerDutyRegion.US,
                        rec.url + PAGERDUTY_PATH)
    yield rec
    rec.close()


@pytest.fixture
def smtp() -> Iterator[tuple[MailSink, int]]:
    sink = MailSink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def notifiers(r: redis.Redis) -> Iterator[Callable[..., Notifier]]:
    """Notifier factory with tiny back-off; every Notifier is closed after the test."""
    made: list[Notifier] = []

    def make(config: dict[str, Any], **kwargs: Any) -> Notifier:
        kwargs = {"base_url": BASE_URL, "backoff_s": (0.05,), "send_timeout_s": 5, **kwargs}
        n = Notifier(r, P, config, **kwargs)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def stream(r: redis.Redis, key: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in r.xrange(key.format(p=P))]


# --- configuration ---------------------------------------------------------------------

def test_smtp_keys_become_an_apprise_url_with_the_password_quoted() -> None:
    url = smtp_url({"smtp_host": "smtp.example.com", "smtp_port": 2525, "from": "qms@example.com",
                    "to": ["ops@example.com", "qa@example.com"], "username": "bot@example.com",
                    "password": "p@ss/w:rd", "tls": "ssl"})
    assert url == ("mailtos://bot%40example.com:p%40ss%2Fw%3Ard@smtp.example.com:2525"
                   "?to=ops@example.com,qa@example.com&from=qms@example.com&mode=ssl")
    assert smtp_url({"smtp_host": "127.0.0.1", "to": "ops@example.com", "tls": False}) == \
        "mailto://127.0.0.1?to=ops@example.com"
    service = load_channels({"email": {"smtp_host": "smtp.example.com", "to": "ops@example.com",
                                       "username": "bot", "password": "p@ss/w:rd"}})["email"].sender[0]
    assert (service.password, service.secure_mode) == ("p@ss/w:rd", "starttls")


def test_webhook_and_slack_convenience_urls() -> None:
    assert webhook_json_url("https://hooks.example.com/qms?team=ops") == "jsons://hooks.example.com/qms?-team=ops"
    assert channel_urls("webhook", {"webhook_url": "http://10.0.0.5:8080/in"}) == ["json://10.0.0.5:8080/in"]
    slack = "https://hooks.slack.com/services/TA/TB/TC"
    assert channel_urls("slack", {"webhook_url": slack}) == [slack]
    assert channel_urls("sms", "twilio://x") == ["twilio://x"]


@pytest.mark.parametrize("config, expected", [
    ({"slack": {}}, "alert_channels.slack: needs 'url' or 'webhook_url'"),
    ({"teams": {"url": "msteams://x"}}, "alert_channels: unknown channel 'teams'"),
    ({"email": {"smtp_host": "h", "to": "a@b.c", "tls": "maybe"}}, "alert_channels.email: 'tls' must be one of"),
    ({"email": {"smtp_host": "h"}}, "alert_channels.email: 'to' must be"),
    ({"email": {"smtp_host": "h", "to": "a@b.c", "smtp_port": "25x"}}, "alert_channels.email: 'smtp_port' must be"),
    ({"pagerduty": {"url": "pagerduty://k@a", "token": "x"}}, "alert_channels.pagerduty: unknown key 'token'"),
    ({"webhook": {"url": "nosuchscheme://verysecret@host"}},
     "alert_channels.webhook: apprise cannot use the URL 'nosuchscheme://****'"),
    ({"dashboard": {"url": "x"}}, "alert_channels.dashboard: built in"),
    (["slack"], "alert_channels: must be a mapping"),
])
def test_bad_channel_configuration_is_refused_naming_the_channel(config: Any, expected: str) -> None:
    with pytest.raises(ChannelConfigError) as err:
        load_channels(config)
    assert str(err.value).startswith(expected)
    assert "verysecret" not in str(err.value)


def test_notifier_refuses_bad_configuration_at_construction(r: redis.Redis) -> None:
    with pytest.raises(ChannelConfigError, match="alert_channels.slack"):
        Notifier(r, P, {"slack": {"url": "slack://only-one-token"}}, base_url=BASE_URL)


# --- delivery --------------------------------------------------------------------------

def test_email_reaches_a_real_smtp_server_once_per_notification(
        smtp: tuple[MailSink, int], notifiers: Callable[..., Notifier], r: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sink, port = smtp
    monkeypatch.setattr(apprise_email.NotifyEmail, "request_rate_per_sec", 0)
    n = notifiers({"email": {"smtp_host": "127.0.0.1", "smtp_port": port, "tls": "none",
                             "from": "qms@example.com", "to": "ops@example.com"}})
    n.notify(transition("firing"), ["email"])
    n.notify(transition("resolved", value=3.0), ["email"])
    assert n.flush(5)

    assert len(sink.messages) == 2
    assert [e.rcpt_tos for e in sink.envelopes] == [["ops@example.com"], ["ops@example.com"]]
    firing, resolved = sink.messages
    assert firing["Subject"] == "[WARNING] High Queue Depth (queue=code_review) is firing"
    assert resolved["Subject"] == "[RESOLVED] High Queue Depth (queue=code_review) is resolved"
    body = firing.get_body().get_content()
    for text in ("Value: 17", "Condition: queue_depth > 15", "Entity: queue=code_review",
                 "Since: 2025-12-31", f"Dashboard: {BASE_URL}/dashboards/operations"):
        assert text in body
    assert "Value: 3" in resolved.get_body().get_content()
    assert [(d["channel"], d["to"], d["attempt"]) for d in stream(r, DELIVERIES)] == \
        [("email", "firing", "1"), ("email", "resolved", "1")]


def test_slack_pagerduty_webhook_and_dashboard_each_get_the_notification(
        receiver: Receiver, notifiers: Callable[..., Notifier]) -> None:
    shown: list[dict[str, Any]] = []
    n = notifiers({"slack": {"webhook_url": "https://hooks.slack.com/services/TA/TB/TC"},
                   "pagerduty": {"url": "pagerduty://integkey@apikey"},
                   "webhook": {"url": f"json://{receiver.url.split('://')[1]}/qms"}},
                  on_dashboard=shown.append)
    tr = transition("firing", severity="critical")
    assert n.notify(tr, ["dashboard", "slack", "pagerduty", "webhook"]) == \
        ["dashboard", "slack", "pagerduty", "webhook"]
    assert n.flush(5)

    title = "[CRITICAL] High Queue Depth (queue=code_review) is firing"
    assert shown == [tr]
    [slack] = receiver.to(SLACK_PATH + "/TA/TB/TC")
    [attachment] = slack["json"]["attachments"]
    assert attachment["title"] == title
    assert "Condition: queue_depth &gt; 15" in attachment["text"]       # Slack's escaping of > < &
    [pd] = receiver.to(PAGERDUTY_PATH)
    assert pd["json"]["routing_key"] == "integkey"
    assert pd["json"]["payload"]["summary"].startswith(title)
    assert pd["json"]["payload"]["severity"] == "critical"
    [hook] = receiver.to("/qms")
    assert hook["json"]["title"] == title and hook["json"]["type"] == "failure"
    assert f"Dashboard: {BASE_URL}/dashboards/operations" in hook["json"]["message"]
    assert len(receiver.posts) == 3
    status = n.channel_status()
    assert {c: s["failures_in_row"] for c, s in status.items()} == \
        {"dashboard": 0, "slack": 0, "pagerduty": 0, "webhook": 0}
    assert all(status[c]["last_ok"] for c in status)


def test_two_notifiers_on_one_redis_send_each_notification_once(
        receiver: Receiver, smtp: tuple[MailSink, int], notifiers: Callable[..., Notifier], r: redis.Redis) -> None:
    sink, port = smtp
    config = {"webhook": {"url": f"json://{receiver.url.split('://')[1]}/qms"},
              "email": {"url": f"mailto://127.0.0.1:{port}?from=qms@example.com&to=ops@example.com"}}
    shown: list[str] = []
    a = notifiers(config, on_dashboard=lambda t: shown.append("a"))
    b = notifiers(config, on_dashboard=lambda t: shown.append("b"))
    channels = ["dashboard", "webhook", "email"]
    claimed = [a.notify(transition(), channels), b.notify(transition(), channels)]
    claimed += [b.notify(transition(at=1_767_225_660_000), channels),
                a.notify(transition(at=1_767_225_660_000), channels)]
    assert a.flush(5) and b.flush(5)

    assert claimed == [channels, [], channels, []]
    assert shown == ["a", "b"]
    assert len(receiver.to("/qms")) == 2
    assert len(sink.messages) == 2
    assert len(stream(r, DELIVERIES)) == 6


def test_a_failing_channel_is_retried_with_back_off_and_its_failures_recorded(
        receiver: Receiver, notifiers: Callable[..., Notifier], r: redis.Redis) -> None:
    receiver.statuses["/qms"] = [500, 500]
    n = notifiers({"webhook": {"url": f"json://{receiver.url.split('://')[1]}/qms"}}, backoff_s=(0.2, 0.4))
    n.notify(transition(), ["webhook"])
    assert n.flush(5)

    posts = receiver.to("/qms")
    assert [p["status"] for p in posts] == [500, 500, 200]
    assert posts[1]["at"] - posts[0]["at"] >= 0.2 and posts[2]["at"] - posts[1]["at"] >= 0.4
    failures = n.recent_failures(10)
    assert [(f["attempt"], f["final"], f["channel"], f["to"]) for f in failures] == \
        [(2, False, "webhook", "firing"), (1, False, "webhook", "firing")]
    assert "500" in failures[0]["error"]
    assert failures[0]["alert"] == "High Queue Depth{queue=code_review}"
    status = n.channel_status()["webhook"]
    assert status["failures_in_row"] == 0 and status["last_ok"] >= status["last_error_at"]
    assert "500" in status["last_error"]
    assert [d["attempt"] for d in stream(r, DELIVERIES)] == ["3"]
    assert json.loads(r.hget(CHANNEL_STATUS.format(p=P), "webhook"))["failures_in_row"] == 0


def test_a_channel_that_always_fails_delays_neither_the_caller_nor_other_channels(
        receiver: Receiver, notifiers: Callable[..., Notifier], r: redis.Redis) -> None:
    receiver.statuses["/qms"] = [503] * 10
    n = notifiers({"webhook": {"url": f"json://{receiver.url.split('://')[1]}/qms"},
                   "slack": {"url": "slack://TA/TB/TC"}}, backoff_s=(0.4,), max_attempts=4)
    started = time.monotonic()
    n.notify(transition(), ["webhook", "slack"])
    returned = time.monotonic() - started
    assert wait_until(lambda: len(receiver.to(SLACK_PATH + "/TA/TB/TC")) == 1)
    assert n.flush(5)

    webhook_posts = receiver.to("/qms")
    assert len(webhook_posts) == 4
    assert returned < 1.0                      # the retries take >= 1.2 s
    assert receiver.to(SLACK_PATH + "/TA/TB/TC")[0]["at"] < webhook_posts[1]["at"]
    failures = n.recent_failures(10)
    assert [(f["attempt"], f["final"]) for f in failures] == [(4, True), (3, False), (2, False), (1, False)]
    assert n.channel_status()["webhook"]["failures_in_row"] == 4
    assert n.channel_status()["slack"]["failures_in_row"] == 0
    assert len(stream(r, FAILURES)) == 4


def test_a_channel_not_configured_is_a_recorded_failure(notifiers: Callable[..., Notifier]) -> None:
    n = notifiers({})
    assert n.notify(transition(), ["sms"]) == ["sms"]
    [failure] = n.recent_failures()
    assert (failure["channel"], failure["final"], failure["error"]) == \
        ("sms", True, "channel not configured in alert_channels")
    assert n.channel_status()["sms"] == {"configured": False, "last_ok": None,
                                         "last_error": "channel not configured in alert_channels",
                                         "last_error_at": failure["at"], "failures_in_row": 1}


def test_secrets_are_masked_in_recorded_errors_and_logs(
        notifiers: Callable[..., Notifier], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    closed = f"http://127.0.0.1:{_free_port()}/v2/enqueue"       # nothing listens: connection refused
    monkeypatch.setitem(apprise_pagerduty.PAGERDUTY_API_LOOKUP, apprise_pagerduty.PagerDutyRegion.US, closed)
    shown_secret = "ApiKeyS3cret"
    n = notifiers({"pagerduty": {"url": f"pagerduty://IntegKeyS3cret@{shown_secret}"}}, max_attempts=1)
    with caplog.at_level(logging.WARNING):
        n.notify(transition(), ["pagerduty"])
        assert n.flush(5)

    [failure] = n.recent_failures()
    # apprise's message names the PagerDuty "host", which here is the API key
    assert failure["error"] == "A Connection error occurred sending Pager Duty notification to ****."
    assert "S3cret" not in n.channel_status()["pagerduty"]["last_error"]
    assert caplog.records and all("S3cret" not in rec.getMessage() for rec in caplog.records)
