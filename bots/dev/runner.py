"""``make run``: the local Workplace and the bot server, wired together, and a new bot live as soon as it is saved.

It starts the emulator (with its provisioning API on) and the bots under gunicorn, then looks at ``handlers/``
and ``.env`` twice a second. A saved module is read (:mod:`.catalog`, in a fresh interpreter); a bot that is new
or whose manifest changed gets its integration from its manifest (:mod:`.workplace`) and its credentials in
``.env``; gunicorn reloads (SIGHUP: new workers read the app and ``.env`` again); once the new worker serves the
bot, its webhooks are saved, the emulator's handshake answered by it. A changed ``.env`` (an Admin Panel reset
writes one) reloads gunicorn too. The emulator stopping stops everything; the bot server stopping does not: the
next save starts it again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from . import envfile, watch
from .workplace import LocalWorkplace, ProvisionError

BANNER = """
  Workplace (local):  {emulator}/work   <- open this: pick who you are, chat with the bots
  Admin Panel:        {emulator}/admin  integrations, tokens, webhooks, permissions
  Bot server:         {bots}        webhooks at /webhooks/<bot>
  New bot: save handlers/<name>.py (`make bot NAME=<name>` writes one): it is live here within seconds.
  Ctrl-C stops both.
"""
Described = dict[str, Any]


@dataclass(frozen=True)
class Options:
    """Where the project is and which ports to serve on."""

    root: Path
    bot_port: int = 8000
    emulator_port: int = 8001
    reset: bool = False
    poll_seconds: float = 0.5
    package: str = "handlers"

    @property
    def bot_url(self) -> str:
        return f"http://127.0.0.1:{self.bot_port}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def env_file(self) -> Path:
        return self.root / ".env"


@dataclass
class Runner:
    """The two servers and what the watcher knows about the bots."""

    options: Options
    say: Callable[[str], None] = field(default=lambda line: print(f"dev: {line}", flush=True))
    emulator: subprocess.Popen[bytes] | None = None
    bots: subprocess.Popen[bytes] | None = None
    known: dict[str, str] = field(default_factory=dict)
    seen: watch.Snapshot = field(default_factory=dict)
    env_mtime: int = 0
    told_stopped: bool = False

    @property
    def workplace(self) -> LocalWorkplace:
        token = envfile.read(self.options.env_file).get("EMULATOR_DEV_TOKEN", "")
        return LocalWorkplace(self.options.emulator_url, token)

    def run(self) -> int:
        """Serve until Ctrl-C, SIGTERM or the emulator stopping: 0 when asked to stop, else the emulator's exit code."""
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        asked = False
        try:
            if self.start():
                print(BANNER.format(emulator=self.options.emulator_url, bots=self.options.bot_url), flush=True)
            while self.emulator is not None and self.emulator.poll() is None:
                time.sleep(self.options.poll_seconds)
                self.look()
        except (KeyboardInterrupt, SystemExit):
            asked = True
        finally:
            self.stop()
        if self.emulator is None:
            return 1
        return 0 if asked else (self.emulator.returncode or 0)

    def start(self) -> bool:
        """Start the emulator, give every bot without an integration one (an existing one is left as an admin left it,
        unless the database is fresh), start the bot server, save the new ones' webhooks."""
        options = self.options
        if not options.env_file.exists():
            envfile.create(options.env_file, (), options.emulator_url)
        envfile.ensure_dev_settings(options.env_file)
        self.emulator = self._spawn_emulator()
        if not _up(f"{options.emulator_url}/_emulator/calls", self.emulator):
            return False
        self.seen = watch.snapshot(options.root / options.package)
        catalog = self.survey() or {}
        provisioned = self.provision(catalog.values(), update=options.reset)  # a fresh database: as manifests say
        self.known = {name: _fingerprint(catalog[name]) for name in provisioned}
        self.bots = self._spawn_bots()
        if not _up(f"{options.bot_url}/healthz", self.bots):
            return False
        self.go_live([catalog[name] for name, created in provisioned.items() if created])
        return True

    def look(self) -> None:
        """One look at ``handlers/`` and ``.env``: a save provisions and reloads, a changed .env reloads."""
        self.tell_if_stopped()
        now = watch.snapshot(self.options.root / self.options.package)
        if now != self.seen:
            saved = max((mtime for path, mtime in now.items() if self.seen.get(path) != mtime), default=0)
            self.seen = now
            self.handlers_changed(saved / 1e9 if saved else time.time())
        elif watch.mtime(self.options.env_file) != self.env_mtime:
            self.env_mtime = watch.mtime(self.options.env_file)
            self.say(".env changed: reloading the bot server")
            if self.reload([]):
                self.say("reloaded: the bot server runs with the new .env")

    def tell_if_stopped(self) -> None:
        """Say once that the bot server stopped: the emulator stays up, and the next save starts it again."""
        if self.bots is not None and self.bots.poll() is not None and not self.told_stopped:
            self.told_stopped = True
            self.say(f"the bot server stopped (exit {self.bots.returncode}); the local Workplace stays up: fix "
                     "what its log says, then save a module in handlers/ (or .env) to start it again")

    def handlers_changed(self, saved_at: float) -> None:
        """Provision the bots that are new or changed, reload the bot server, then save their webhooks."""
        catalog = self.survey()
        if catalog is None:
            return
        wanted = [described for name, described in catalog.items() if self.known.get(name) != _fingerprint(described)]
        changed = [catalog[name] for name in self.provision(wanted, update=True)]
        self.known.update({described["name"]: _fingerprint(described) for described in changed})
        if not self.reload([described["name"] for described in changed]):
            self.say("the bot server did not serve the saved code within 15 s: its log above says why")
            return
        self.go_live(changed)
        for described in changed:
            self.say(f"{described['name']}: live {time.time() - saved_at:.1f} s after the save")
        if not changed:
            self.say(f"reloaded: the saved code is served {time.time() - saved_at:.1f} s after the save")

    def survey(self) -> dict[str, Described] | None:
        """What the bots in ``handlers/`` declare now, read in a fresh interpreter; None when it cannot be read."""
        command = [sys.executable, "-m", "bots.dev.catalog", self.options.package, self.options.bot_url]
        done = subprocess.run(command, cwd=self.options.root, env=self._environ(), capture_output=True, text=True,
                              timeout=60)
        sys.stderr.write(done.stderr)
        if done.returncode != 0:
            self.say(f"could not read {self.options.package}/ (exit {done.returncode}); fix it and save again")
            return None
        return {described["name"]: described for described in json.loads(done.stdout)["bots"]}

    def provision(self, catalog: Iterable[Described], update: bool) -> dict[str, bool]:
        """Give each bot its integration (``update``: brought in line with its manifest) and its credentials in
        .env; for each bot that has them now, whether its integration was just created."""
        provisioned: dict[str, bool] = {}
        for described in catalog:
            name = described["name"]
            verify = envfile.read(self.options.env_file).get(f"{name.upper()}_VERIFY_TOKEN")
            try:
                credentials, new = self.workplace.provision(described, verify, update=update)
            except ProvisionError as error:
                self.say(f"{name}: not provisioned: {error}")
                continue
            if envfile.write_credentials(self.options.env_file, credentials):
                self.say(f"{name}: credentials written to .env ({', '.join(credentials.as_settings())})")
            if new:
                self.say(f"{name}: integration created in the local Workplace from its manifest")
            provisioned[name] = new
        self.env_mtime = watch.mtime(self.options.env_file)
        return provisioned

    def reload(self, names: list[str]) -> bool:
        """Have gunicorn serve the code and .env as they are now (start it if it stopped); True once ``names`` are
        served by a new worker."""
        if self.bots is None or self.bots.poll() is not None:
            self.bots, self.told_stopped = self._spawn_bots(), False
            up = _up(f"{self.options.bot_url}/healthz", self.bots)
            return up and _serving(self.options.bot_url, names, self.bots)
        old = _children(self.bots.pid)
        self.bots.send_signal(signal.SIGHUP)
        return _replaced(self.bots, old) and _serving(self.options.bot_url, names, self.bots)

    def go_live(self, catalog: Iterable[Described]) -> None:
        """Save each bot's webhooks now that the bot server answers their handshakes."""
        for described in catalog:
            name = described["name"]
            verify = envfile.read(self.options.env_file).get(f"{name.upper()}_VERIFY_TOKEN", "")
            try:
                topics = self.workplace.save_webhooks(described, verify)
            except ProvisionError as error:
                self.say(f"{name}: webhooks not saved: {error}")
                continue
            self.say(f"{name}: webhooks saved ({', '.join(topics) or 'none'})")

    def stop(self) -> None:
        """Stop both servers, waiting up to 10 s for each."""
        running = [p for p in (self.bots, self.emulator) if p is not None and p.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    def _environ(self) -> dict[str, str]:
        """This process's environment, with the project and this framework first on the children's import path."""
        framework = str(Path(__file__).resolve().parents[2])
        path = [str(self.options.root), framework, *filter(None, [os.environ.get("PYTHONPATH")])]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}

    def _spawn_emulator(self) -> subprocess.Popen[bytes]:
        """The emulator, given .env's values (it does not read the file itself here), its dev token and the .env
        its Admin Panel's resets update."""
        options = self.options
        env = {**self._environ(), **envfile.read(options.env_file), "DOTENV": "0",
               "EMULATOR_BOT_URL": options.bot_url, "EMULATOR_DEV_ENV_FILE": str(options.env_file)}
        command = [sys.executable, "-m", "emulator", "--port", str(options.emulator_port),
                   "--db", str(options.root / "data" / "emulator.sqlite3")] + (["--reset"] if options.reset else [])
        return subprocess.Popen(command, cwd=options.root, env=env)

    def _spawn_bots(self) -> subprocess.Popen[bytes]:
        """gunicorn serving ``app:app``; .env is left to the app to read, so each reload reads it anew."""
        options = self.options
        env = {**self._environ(), "GRAPH_API_URL": options.emulator_url, "MISSING_SETTINGS": "skip"}
        command = [str(Path(sys.executable).parent / "gunicorn"), "app:app", "--bind", f"127.0.0.1:{options.bot_port}",
                   "--workers", "1", "--threads", "8", "--worker-class", "gthread", "--graceful-timeout", "5"]
        return subprocess.Popen(command, cwd=options.root, env=env)


def _fingerprint(described: Described) -> str:
    return json.dumps(described, sort_keys=True)


def _up(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """Wait until ``url`` answers (any HTTP status), or ``process`` exits, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(url, timeout=1)
            return True
        except requests.RequestException:
            time.sleep(0.05)
    return False


def _children(pid: int) -> set[int]:
    """The pids of ``pid``'s children (gunicorn's workers), from /proc; empty where there is none."""
    try:
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _replaced(master: subprocess.Popen[bytes], old: set[int], timeout: float = 15) -> bool:
    """Wait until none of the ``old`` workers is left and a new one runs (where /proc does not tell, the index
    check that follows is all there is)."""
    if not Path(f"/proc/{master.pid}/task").exists():
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and master.poll() is None:
        workers = _children(master.pid)
        if workers and not workers & old:
            return True
        time.sleep(0.02)
    return False


def _serving(url: str, names: list[str], process: subprocess.Popen[bytes], timeout: float = 15) -> bool:
    """Wait until the bot server's index lists every bot in ``names``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            listed = {bot["name"] for bot in requests.get(url, timeout=2).json()["bots"]}
            if set(names) <= listed:
                return True
        except (requests.RequestException, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.02)
    return False
