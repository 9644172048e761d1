"""BotServer: bots served from a Flask app that has routes of its own, the Flask-extension way."""

from __future__ import annotations

import json
import subprocess
import sys

from flask import Flask

from bots import Bot
from bots.flask import BotServer
from bots.signature import sign
from bots.testing import settings_for
from tests.support import sent_texts, wait_for

SECRET = "extension-secret-0123"


def shop_app() -> Flask:
    """Somebody's existing app: a page of its own and its own 404 page."""
    app = Flask("shop")

    @app.route("/")
    def home() -> str:
        return "the shop"

    @app.errorhandler(404)
    def not_found(error) -> tuple[str, int]:
        return "<h1>not in the shop</h1>", 404
    return app


def greeter(bot: Bot) -> Bot:
    @bot.on_message()
    def hello(event, ctx) -> None:
        ctx.reply(f"hello {event.text}")
    return bot


def deliver(client, path: str, secret: str, text: str = "there"):
    body = json.dumps({"object": "page", "entry": [{"id": "1", "time": 1, "messaging": [{
        "sender": {"id": "100071"}, "recipient": {"id": "1"}, "timestamp": 1,
        "message": {"mid": f"m_{text}", "text": text}}]}]}).encode()
    return client.post(path, data=body, headers={"X-Hub-Signature-256": sign(body, secret)})


def test_an_app_with_routes_of_its_own_serves_bots_beside_them(bot, graph_server, tmp_path):
    app = shop_app()
    app.config.update(DATA_DIR=str(tmp_path), GRAPH_API_URL=graph_server.url, **settings_for(greeter(bot)))
    BotServer(app, bots=[bot], env={})
    client = app.test_client()

    assert client.get("/").text == "the shop"
    assert deliver(client, "/webhooks/demo", settings_for(bot)["DEMO_APP_SECRET"]).json == {"received": 1}
    wait_for(lambda: sent_texts(graph_server) == ["hello there"])
    assert client.get("/readyz").status_code == 200
    assert client.get("/no-such-page").text == "<h1>not in the shop</h1>", "the app's own error pages stay"
    assert "bots" in app.cli.commands
    app.extensions["bots"].shutdown(2)


def test_init_app_mounts_under_a_prefix_with_settings_from_config_before_the_environment(bot, graph_server,
                                                                                         tmp_path):
    server = BotServer(bots=[greeter(bot)], url_prefix="/hooks",
                       env={**settings_for(bot), "DEMO_APP_SECRET": "from-the-environment", "INBOX": "sqlite"})
    app = shop_app()
    app.config.update(DEMO_APP_SECRET=SECRET, INBOX="memory", DATA_DIR=str(tmp_path), GRAPH_API_URL=graph_server.url)
    deployment = server.init_app(app)
    client = app.test_client()

    assert deployment.inbox.durable is False, "INBOX from app.config wins over the environment"
    assert deliver(client, "/hooks/demo", SECRET).status_code == 200
    assert deliver(client, "/hooks/demo", "from-the-environment", "x").status_code == 403
    assert client.post("/webhooks/demo").status_code == 404
    refused = client.post("/hooks/demo", data=b"{}" * 600_000)
    assert refused.status_code == 413 and "larger than" in refused.json["error"]["message"]
    deployment.shutdown(2)


def test_the_composition_root_and_the_celery_worker_import_no_flask():
    code = ("import sys, bots.deployment, bots.inbox.celery; "
            "loaded = sorted(m for m in sys.modules if m == 'flask' or m.startswith('flask.')); "
            "sys.exit(f'flask was imported: {loaded}' if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
