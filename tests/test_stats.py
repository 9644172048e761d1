"""Call statistics as the Admin Panel shows them: the last request day and seven days of counts."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from bots import Bot
from bots.stats import CallStats
from bots.store import Store
from bots.testing import BotTester


class Calendar:
    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> date:
        return self.day


def test_a_simulated_week_of_calls(tmp_path):
    calendar = Calendar(date(2026, 11, 20))
    stats = CallStats(Store(tmp_path / "s.sqlite3"), today=calendar)
    for offset, calls in enumerate([3, 0, 5, 1, 0, 0, 2, 4, 7]):
        calendar.day = date(2026, 11, 20) + timedelta(days=offset)
        for _ in range(calls):
            stats.record("helpdesk")
    stats.record("other")
    summary = stats.summary("helpdesk")
    assert summary["last_request_day"] == "2026-11-28"
    assert summary["last_7_days"] == [
        {"day": "2026-11-22", "calls": 5}, {"day": "2026-11-23", "calls": 1}, {"day": "2026-11-24", "calls": 0},
        {"day": "2026-11-25", "calls": 0}, {"day": "2026-11-26", "calls": 2}, {"day": "2026-11-27", "calls": 4},
        {"day": "2026-11-28", "calls": 7}]


def test_a_quiet_week_still_shows_the_last_request_day(tmp_path):
    calendar = Calendar(date(2026, 1, 1))
    stats = CallStats(Store(tmp_path / "s.sqlite3"), today=calendar)
    stats.record("helpdesk")
    calendar.day = date(2026, 3, 1)
    summary = stats.summary("helpdesk")
    assert summary["last_request_day"] == "2026-01-01"
    assert {d["calls"] for d in summary["last_7_days"]} == {0}
    assert CallStats(Store(tmp_path / "s.sqlite3")).summary("never")["last_request_day"] is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_calls_are_written_together_at_most_once_a_second(tmp_path):
    """A Graph call costs no write transaction of its own: another process sees the counts once a second."""
    clock, calendar = Clock(), Calendar(date(2026, 11, 20))
    web = CallStats(Store(tmp_path / "s.sqlite3"), today=calendar, clock=clock)
    admin = CallStats(Store(tmp_path / "s.sqlite3"), today=calendar)
    for _ in range(3):
        web.record("helpdesk")
    assert admin.summary("helpdesk")["last_7_days"][-1]["calls"] == 0
    clock.now += 1.0
    web.record("helpdesk")
    assert admin.summary("helpdesk")["last_7_days"][-1]["calls"] == 4


def test_stopping_the_deployment_writes_the_last_counts(tester, bot):
    bot.on_message()(lambda event, ctx: ctx.reply("hi"))
    tester.message("a")
    deployment = tester.app.extensions["bots"]
    deployment.shutdown()
    elsewhere = CallStats(Store(deployment.stats.store.path))
    assert elsewhere.summary("demo")["last_7_days"][-1]["calls"] == 1


def test_every_graph_request_counts_retries_included(tester, bot):
    bot.on_message()(lambda event, ctx: ctx.reply("hi"))
    tester.message("a")
    tester.graph.fail_next(code=2)
    tester.message("b")
    today = tester.app.extensions["bots"].stats.summary("demo")["last_7_days"][-1]
    assert today["calls"] == 3


@pytest.fixture
def admin():
    bot = Bot("counted")
    bot.on_message()(lambda event, ctx: ctx.reply("hi"))
    tester = BotTester(bot, settings={"ADMIN_TOKEN": "admin-token-123"})
    tester.message("x")
    return tester


def test_admin_api_shows_the_stats_to_the_admin_token(admin):
    response = admin.client.get("/admin/api/stats/counted", headers={"Authorization": "Bearer admin-token-123"})
    assert response.status_code == 200
    assert response.json["last_7_days"][-1]["calls"] == 1
    everything = admin.client.get("/admin/api/stats", headers={"Authorization": "Bearer admin-token-123"}).json
    assert [b["bot"] for b in everything["bots"]] == ["counted"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "admin-token-123", "Basic admin-token-123"])
def test_admin_api_refuses_without_the_token(admin, header):
    response = admin.client.get("/admin/api/stats", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json["error"]["field"] == "Authorization"


def test_admin_api_is_off_without_admin_token(tester):
    response = tester.client.get("/admin/api/stats", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404
    assert "ADMIN_TOKEN" in response.json["error"]["message"]


def test_admin_api_unknown_bot(admin):
    response = admin.client.get("/admin/api/stats/nobody", headers={"Authorization": "Bearer admin-token-123"})
    assert response.status_code == 404


def test_flask_bots_stats_prints_the_week(admin):
    runner = admin.app.test_cli_runner()
    table = runner.invoke(args=["bots", "stats"])
    assert table.exit_code == 0
    assert "counted" in table.output and "last request 20" in table.output
    data = json.loads(runner.invoke(args=["bots", "stats", "counted", "--json"]).output)
    assert data["bots"][0]["last_7_days"][-1]["calls"] == 1
    assert runner.invoke(args=["bots", "stats", "nobody"]).exit_code != 0


def test_redis_call_stats_count_the_same_week_across_processes(redis_url):
    import redis

    from bots.stats import RedisCallStats

    calendar = Calendar(date(2026, 11, 20))
    client = redis.Redis.from_url(redis_url)
    web = RedisCallStats(client, today=calendar)
    worker = RedisCallStats(redis.Redis.from_url(redis_url), today=calendar)
    assert web.summary("helpdesk")["last_request_day"] is None
    for offset, calls in enumerate([3, 0, 5, 1, 0, 0, 2, 4, 7]):
        calendar.day = date(2026, 11, 20) + timedelta(days=offset)
        for n in range(calls):
            (web if n % 2 else worker).record("helpdesk")
    web.record("other")
    summary = worker.summary("helpdesk")
    assert summary["last_request_day"] == "2026-11-28"
    assert [day["calls"] for day in summary["last_7_days"]] == [5, 1, 0, 0, 2, 4, 7]
    assert 0 < client.ttl("bots:calls:helpdesk:2026-11-28") <= RedisCallStats.KEEP_SECONDS


def test_redis_call_stats_never_break_a_graph_call_when_redis_is_away():
    from bots.inbox.redis_journal import redis_client
    from bots.stats import RedisCallStats

    stats = RedisCallStats(redis_client("redis://127.0.0.1:1/0"))
    stats.record("helpdesk")  # logged, not raised
