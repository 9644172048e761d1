"""``flask bots ...``: look at what the server runs and talk to it from a terminal."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import click
import requests
from flask import current_app
from flask.cli import AppGroup, ScriptInfo

from .. import signature
from ..bot import Bot
from ..deliveries import Deliveries
from ..errors import ConfigError, GraphError
from ..manifest import as_text, manifest
from ..setup import setup

bots_cli = AppGroup("bots", help="Inspect and exercise the bots this app serves.")


@bots_cli.command("routes")
def routes() -> None:
    """List every bot, its webhook URL and its handlers in the order they are tried; a bot left out for want of
    its settings (``MISSING_SETTINGS=skip``) is listed with why."""
    deployment = current_app.extensions["bots"]
    for name, runtime in deployment.runtimes.items():
        click.echo(f"{name}  /webhooks/{name}  {runtime.bot.description}")
        for listener in runtime.bot.listeners:
            topic = f"{listener.object}/{listener.field or '*'}" if listener.object else listener.kind
            click.echo(f"    {topic:<28} {listener.matcher.label:<40} {listener.name}")
    for name, skipped in deployment.skipped.items():
        click.echo(f"{name}  not served: {skipped.error} (`flask bots provision {name}` in the local Workplace)")


@bots_cli.command("setup")
@click.argument("bot")
@click.option("--callback-url", required=True, help="The server's public base URL, e.g. https://bots.example.com")
def setup_command(bot: str, callback_url: str) -> None:
    """Push BOT's Messenger profile and subscribe the webhook topics and fields its handlers need."""
    runtime = current_app.extensions["bots"].runtimes.get(bot)
    if runtime is None:
        raise click.UsageError(f"no bot named {bot!r} here; `flask bots routes` lists them")
    try:
        for line in setup(runtime, callback_url):
            click.echo(f"{bot}: {line}")
    except (ConfigError, ValueError, GraphError) as error:
        raise click.ClickException(str(error)) from None


@bots_cli.command("manifest", with_appcontext=False)
@click.argument("bot", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--callback-url", default="https://bots.example.com", show_default=True,
              help="The server's public base URL.")
def manifest_command(bot: str | None, as_json: bool, callback_url: str) -> None:
    """Print what to enter in the Admin Panel for each bot (or BOT): permissions, webhooks, domains.

    Needs no credentials: a bot whose settings are missing is described too."""
    manifests = [manifest(each, callback_url) for each in _chosen(bot)]
    if as_json:
        click.echo(json.dumps({"integrations": manifests}, indent=2))
        return
    click.echo("\n\n".join(as_text(data) for data in manifests))


@bots_cli.command("provision", with_appcontext=False)
@click.argument("bot", required=False)
@click.option("--callback-url", default="http://127.0.0.1:8000", show_default=True,
              help="The bot server the local Workplace's webhooks point at.")
@click.option("--env-file", default=".env", show_default=True, type=click.Path(path_type=Path),
              help="The dev .env its credentials are written into.")
@click.option("--wait", default=10.0, show_default=True, help="Seconds to wait for the bot server to serve it.")
def provision_command(bot: str | None, callback_url: str, env_file: Path, wait: float) -> None:
    """Create each bot's (or BOT's) integration in the local Workplace from its manifest and write its credentials
    into .env; once the bot server serves it (`make run` reloads on its own), save its webhooks.

    Development only: the emulator's provisioning API needs EMULATOR_DEV_TOKEN (`make run` writes it into .env)."""
    from ..dev.catalog import describe
    from ..dev.envfile import read, write_credentials
    from ..dev.workplace import LocalWorkplace, ProvisionError

    values = {**read(env_file), **os.environ}
    if not values.get("EMULATOR_DEV_TOKEN"):
        raise click.ClickException("EMULATOR_DEV_TOKEN is not set: `make run` writes it into .env and starts the "
                                   "local Workplace with it")
    workplace = LocalWorkplace(values.get("GRAPH_API_URL", "http://127.0.0.1:8001"), values["EMULATOR_DEV_TOKEN"])
    for each in _chosen(bot):
        described = describe(each, callback_url)
        try:
            credentials, _ = workplace.provision(described, read(env_file).get(f"{each.name.upper()}_VERIFY_TOKEN"))
            write_credentials(env_file, credentials)
            click.echo(f"{each.name}: integration {credentials.app_id} in the local Workplace; credentials in "
                       f"{env_file}")
            if _served(callback_url, each.name, wait):
                topics = workplace.save_webhooks(described, credentials.verify_token)
                click.echo(f"{each.name}: webhooks saved ({', '.join(topics) or 'none'})")
            else:
                click.echo(f"{each.name}: {callback_url} does not serve it yet: start the bot server (`make run`) "
                           f"and run this again to save its webhooks")
        except ProvisionError as error:
            raise click.ClickException(f"{each.name}: {error}") from None


def _chosen(bot: str | None) -> list[Bot]:
    """The app's bots (or only ``bot``), those whose settings are missing included: the app is loaded with
    ``MISSING_SETTINGS=skip`` for this command."""
    info = click.get_current_context().ensure_object(ScriptInfo)
    before = os.environ.get("MISSING_SETTINGS")
    os.environ["MISSING_SETTINGS"] = "skip"
    try:
        app = info.load_app()
    finally:
        if before is None:
            os.environ.pop("MISSING_SETTINGS", None)
        else:
            os.environ["MISSING_SETTINGS"] = before
    bots: list[Bot] = app.extensions["bots"].bots
    if bot and bot not in {each.name for each in bots}:
        raise click.UsageError(f"no bot named {bot!r} here; `flask bots routes` lists them")
    return [each for each in bots if bot in (None, each.name)]


def _served(url: str, name: str, wait: float = 10.0) -> bool:
    """Whether the bot server at ``url`` lists bot ``name``, waiting up to ``wait`` seconds for a reload."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if name in {each["name"] for each in requests.get(url, timeout=2).json()["bots"]}:
                return True
        except (requests.RequestException, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.2)
    return False


@bots_cli.command("stats")
@click.argument("bot", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(bot: str | None, as_json: bool) -> None:
    """Show each bot's last API request day and its calls on each of the last seven days."""
    deployment = current_app.extensions["bots"]
    names = [bot] if bot else list(deployment.runtimes)
    if bot and bot not in deployment.runtimes:
        raise click.UsageError(f"no bot named {bot!r} here; `flask bots routes` lists them")
    summaries = [deployment.stats.summary(name) for name in names]
    if as_json:
        click.echo(json.dumps({"bots": summaries}, indent=2))
        return
    for summary in summaries:
        days = "  ".join(f"{d['day'][5:]} {d['calls']:>4}" for d in summary["last_7_days"])
        click.echo(f"{summary['bot']:<16} last request {summary['last_request_day'] or 'never':<10}  {days}")


@bots_cli.command("work")
@click.option("--threads", default=8, show_default=True, help="Handler threads.")
@click.option("--senders", default=4, show_default=True, help="Threads delivering the outbox to Graph.")
def work(threads: int, senders: int) -> None:
    """Run the inbox's handler and sender threads here, without serving HTTP, until Ctrl-C or SIGTERM.

    For the embedded inbox on one machine: web processes with HANDLER_THREADS=0 and OUTBOX_THREADS=0
    only accept, and this process handles what they append.
    """
    deployment = current_app.extensions["bots"]
    if not deployment.inbox.durable:
        raise click.UsageError("INBOX=memory keeps events inside each web process: there is nothing to work on here")
    if not hasattr(deployment.inbox, "handlers"):
        raise click.UsageError("INBOX=celery is worked by Celery: run `celery -A worker worker` (Procfile)")
    deployment.inbox.handlers.count, deployment.inbox.senders.count = threads, senders
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    deployment.start()
    click.echo(f"working on the inbox of {', '.join(deployment.runtimes)}; Ctrl-C stops")
    try:
        while not stopping.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    deployment.inbox.shutdown()


@bots_cli.command("deadletters")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def deadletters(as_json: bool) -> None:
    """List events and messages parked after their last attempt, with the error of each."""
    letters = current_app.extensions["bots"].inbox.dead_letters()
    if as_json:
        click.echo(json.dumps({"dead_letters": letters}, indent=2))
        return
    if not letters:
        click.echo("no dead letters")
        return
    for letter in letters:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(letter["failed_at"] or 0))
        click.echo(f"{letter['id']:<14} {when}  {letter['bot']:<12} {letter['what']:<28} "
                   f"attempts {letter['attempts']:<3} {letter['error']}")
    click.echo(f"{len(letters)} dead letters; `flask bots replay <id>` or `--all` puts them back in line")


@bots_cli.command("replay")
@click.argument("letter_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def replay(letter_id: str | None, replay_all: bool) -> None:
    """Put dead letter LETTER_ID (event:12, message:7), or --all of them, back in line."""
    if bool(letter_id) == replay_all:
        raise click.UsageError("give one dead letter id (see `flask bots deadletters`) or --all")
    try:
        count = current_app.extensions["bots"].inbox.replay(letter_id)
    except (ValueError, LookupError) as error:
        raise click.UsageError(str(error)) from None
    if letter_id and not count:
        raise click.ClickException(f"no dead letter {letter_id!r}: `flask bots deadletters` lists them")
    click.echo(f"replaying {count} dead letter{'s' if count != 1 else ''}; the running server picks "
               f"{'them' if count != 1 else 'it'} up")


@bots_cli.command("simulate")
@click.argument("bot")
@click.argument("text")
@click.option("--postback", is_flag=True, help="Send TEXT as a postback payload instead of a message.")
@click.option("--quick-reply", is_flag=True, help="Send TEXT as a quick-reply payload.")
@click.option("--sender", default="100071234567890", show_default=True, help="Who the message is from.")
@click.option("--thread", default=None, help="A group-chat thread id (t_...), for a group message.")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The running bot server.")
def simulate(bot: str, text: str, postback: bool, quick_reply: bool, sender: str, thread: str | None,
             url: str) -> None:
    """Post a signed chat event to a running server and show what the bot answered (via the emulator)."""
    runtime = current_app.extensions["bots"].runtimes.get(bot)
    if runtime is None:
        raise click.UsageError(f"no bot named {bot!r} here; `flask bots routes` lists them")
    build = Deliveries(sender=sender)
    if postback:
        body = build.postback(text, thread=thread)
    elif quick_reply:
        body = build.quick_reply(text, thread=thread)
    else:
        body = build.message(text, thread=thread)
    raw = json.dumps(body).encode()
    calls_url = f"{runtime.client.base_url}/_emulator/calls"
    before = _emulator_calls(calls_url)
    response = requests.post(f"{url.rstrip('/')}/webhooks/{bot}", data=raw, timeout=10, headers={
        "Content-Type": "application/json",
        signature.SHA256_HEADER: signature.sign(raw, runtime.settings.app_secret)})
    click.echo(f"delivered: HTTP {response.status_code} {response.text.strip()}")
    if before is None:
        return
    for call in _new_calls(calls_url, len(before), bot):
        message = (call["body"] or {}).get("message") or {}
        buttons = " ".join(f"[{q['title']}]" for q in message.get("quick_replies", []))
        click.echo(f"{bot}: {message.get('text') or call['body']} {buttons}".rstrip())


def _emulator_calls(url: str) -> list[dict[str, Any]] | None:
    try:
        calls = requests.get(url, timeout=2).json()["calls"]
        return calls if isinstance(calls, list) else None
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


def _new_calls(url: str, seen: int, bot: str, wait: float = 3.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        calls = [c for c in (_emulator_calls(url) or [])[seen:] if c["integration"] == bot]
        if calls:
            time.sleep(0.2)
            return [c for c in (_emulator_calls(url) or [])[seen:] if c["integration"] == bot]
        time.sleep(0.1)
    click.echo("(no answer reached the emulator within 3 s; the server log says why)")
    return []
