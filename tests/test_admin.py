"""The admin JSON API's dead-letter endpoints (the stats endpoints are in test_stats.py)."""

from __future__ import annotations

from bots.deliveries import Deliveries
from tests.support import sent_texts, wait_for

BUILD = Deliveries()
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


def test_dead_letters_are_listed_and_replayed_over_the_admin_api(bot, served, graph_server):
    broken = {"on": True}

    @bot.on_postback("PAY")
    def pay(event, ctx):
        if broken["on"]:
            raise TimeoutError("payment service timed out")
        ctx.reply("paid")

    server = served(INBOX_MAX_ATTEMPTS="1", ADMIN_TOKEN="admin-token-for-tests")
    server.post(BUILD.postback("PAY"))
    wait_for(server.inbox.dead_letters)

    listed = server.client.get("/admin/api/deadletters", headers=ADMIN).json
    assert listed["count"] == 1
    assert listed["dead_letters"][0]["error"] == "TimeoutError: payment service timed out"

    assert server.client.post("/admin/api/deadletters/event:9/replay", headers=ADMIN).status_code == 404
    bad = server.client.post("/admin/api/deadletters/nonsense/replay", headers=ADMIN)
    assert bad.status_code == 400 and "event:12" in bad.json["error"]["message"]

    broken["on"] = False
    assert server.client.post("/admin/api/deadletters/replay", headers=ADMIN).json == {"replayed": 1}
    assert wait_for(lambda: sent_texts(graph_server)) == ["paid"]


def test_the_dead_letter_endpoints_need_the_admin_token(bot, served):
    server = served(ADMIN_TOKEN="admin-token-for-tests")
    assert server.client.get("/admin/api/deadletters").status_code == 401
    assert server.client.post("/admin/api/deadletters/replay").status_code == 401
    assert served().client.get("/admin/api/deadletters", headers=ADMIN).status_code == 404
