"""The distribution ``workplace-bots``: what ``pip install`` of this repository gives someone else's project.

``python -m build`` makes the sdist and, from it, the wheel (hatchling, in an isolated environment). The
wheel goes into a fresh virtualenv in a temporary folder, installed by the repository venv's pip
(``pip --python``) with its dependencies held to requirements.txt's pins (``-c``), so the install is the
tested set and takes seconds. Every command runs from a temporary folder without ``PYTHONPATH``, so
nothing can be imported from the checkout by accident.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement

from bots.flask.cli import bots_cli

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (ROOT / "bots" / "__init__.py").read_text(), re.M).group(1)
PACKAGES = ("bots", "linkpreview", "emulator")

USER_APP = textwrap.dedent('''\
    """A user's bot, served by an app of their own."""
    from bots import Bot
    from bots.flask import make_app

    bot = Bot("echo", description="says it back")


    @bot.on_message()
    def echo(event, ctx):
        ctx.reply(event.text)


    def create_app():
        return make_app([bot], {"ECHO_APP_SECRET": "a" * 32, "ECHO_ACCESS_TOKEN": "t" * 32,
                                "ECHO_VERIFY_TOKEN": "v" * 16, "INBOX": "memory"})


    app = create_app()
    ''')
ROUTES = "echo  /webhooks/echo  says it back"


@dataclass
class Venv:
    """A virtualenv outside the repository, with no pip of its own: the repository's pip installs into it."""

    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def install(self, *args: str) -> None:
        run([sys.executable, "-m", "pip", "--python", str(self.bin / "python"), "install", "-q",
             "-c", str(ROOT / "requirements.txt"), *args], cwd=self.path, timeout=300)

    def run(self, *args: str, cwd: Path, env: Mapping[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``args[0]`` from this venv's bin/ in ``cwd``, with the outside environment less PYTHONPATH."""
        return run([str(self.bin / args[0]), *args[1:]], cwd=cwd, env=env, check=check)


def run(command: list[str], cwd: Path, env: Mapping[str, str] | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BOTS_APP", "FLASK_APP")}
    done = subprocess.run(command, cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{command} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def new_venv(path: Path) -> Venv:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return Venv(path)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel ``python -m build`` makes from the checkout."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out, timeout=300)
    return {"wheel": next(out.glob("*.whl")), "sdist": next(out.glob("*.tar.gz"))}


@pytest.fixture(scope="module")
def venv(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    env = new_venv(tmp_path_factory.mktemp("venv") / "venv")
    env.install(str(dist["wheel"]))
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty folder of someone's own project with one module that builds an app."""
    (tmp_path / "mybot_app.py").write_text(USER_APP)
    return tmp_path


def test_the_wheel_holds_the_three_packages_their_files_and_the_command(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = wheel.namelist()
        info = f"workplace_bots-{VERSION}.dist-info"
        metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert {name.split("/")[0] for name in names} == {*PACKAGES, info}
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    for package in PACKAGES:
        assert f"{package}/py.typed" in names
    shipped = {f"emulator/{p.relative_to(ROOT / 'emulator')}" for folder in ("templates", "static")
               for p in (ROOT / "emulator" / folder).iterdir()}
    assert shipped and shipped <= set(names)
    assert (metadata["Name"], metadata["Version"]) == ("workplace-bots", VERSION)
    assert "bots = bots.flask.command:main" in entry_points
    assert "[pytest11]\nbots.pytest_plugin = bots.pytest_plugin" in entry_points
    assert metadata.get_all("Provides-Extra") == ["celery"]


def test_the_declared_ranges_admit_the_pins_of_requirements_txt(dist: dict[str, Path]) -> None:
    """pyproject.toml says what the package accepts, requirements.txt what the app and CI run: the pins
    must lie inside the ranges, extras included, or the tested set is not one a user can get."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version.strip()
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        metadata = Parser().parsestr(wheel.read(f"workplace_bots-{VERSION}.dist-info/METADATA").decode())
    declared = [Requirement(line) for line in metadata.get_all("Requires-Dist")]
    assert {r.name.lower() for r in declared} >= {"flask", "werkzeug", "gunicorn", "requests", "marshmallow",
                                                   "python-dotenv", "beautifulsoup4", "prometheus-client",
                                                   "redis", "celery", "hiredis"}
    for requirement in declared:
        pin = pins[requirement.name.lower().replace("_", "-")]
        assert str(requirement.specifier), f"{requirement.name}: no range"
        assert requirement.specifier.contains(pin), f"{requirement} refuses requirements.txt's {pin}"


def test_installed_it_imports_from_anywhere_with_its_version_and_files(venv: Venv, project: Path) -> None:
    probe = textwrap.dedent("""\
        import importlib.metadata, importlib.resources, importlib.util, json
        import bots, emulator, linkpreview
        files = importlib.resources.files
        print(json.dumps({
            "version": bots.__version__,
            "distribution": importlib.metadata.version("workplace-bots"),
            "where": [m.__file__ for m in (bots, emulator, linkpreview)],
            "typed": [files(p).joinpath("py.typed").is_file() for p in ("bots", "linkpreview", "emulator")],
            "emulator": [files("emulator").joinpath(f).is_file() for f in ("templates/base.html", "static/app.js")],
            "not packaged": [n for n in ("handlers", "tests", "bench", "app", "worker") if importlib.util.find_spec(n)],
        }))
        """)
    found = json.loads(venv.run("python", "-c", probe, cwd=project).stdout)
    assert found["version"] == found["distribution"] == VERSION
    assert all(Path(where).is_relative_to(venv.path) for where in found["where"]), found["where"]
    assert found["typed"] == [True, True, True]
    assert found["emulator"] == [True, True]
    assert found["not packaged"] == []


def test_bots_help_lists_every_flask_bots_command_and_emulator(venv: Venv, project: Path) -> None:
    shown = venv.run("bots", "--help", cwd=project).stdout
    listed = set(re.findall(r"^  (\w+) ", shown.split("Commands:")[1], re.M))
    assert listed == set(bots_cli.commands) | {"emulator", "new"}
    assert {"routes", "simulate", "setup", "stats", "manifest", "deadletters", "replay", "work"} <= listed
    assert venv.run("bots", "--version", cwd=project).stdout.strip() == f"bots, version {VERSION}"


def test_bots_new_writes_a_bot_from_the_installed_templates_and_its_test_passes(venv: Venv, tmp_path: Path) -> None:
    venv.install("pytest")
    assert venv.run("bots", "new", "mybot", cwd=tmp_path).stdout.startswith("wrote handlers/mybot.py\n")
    tested = venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_mybot.py", cwd=tmp_path,
                      env={"PYTHONPATH": str(tmp_path)})
    assert "3 passed" in tested.stdout


@pytest.mark.parametrize("how", [["--app", "mybot_app:app"], ["--app", "mybot_app:create_app()"], "BOTS_APP"])
def test_bots_finds_the_app_named_by_app_or_bots_app(venv: Venv, project: Path, how: list[str] | str) -> None:
    if how == "BOTS_APP":
        done = venv.run("bots", "routes", cwd=project, env={"BOTS_APP": "mybot_app:app"})
    else:
        done = venv.run("bots", *how, "routes", cwd=project)
    assert done.stdout.splitlines()[0] == ROUTES
    assert re.search(r"^    message +any +echo$", done.stdout, re.M)


def test_bots_finds_app_py_in_the_current_folder_and_says_how_when_there_is_none(venv: Venv, project: Path,
                                                                                  tmp_path_factory) -> None:
    (project / "mybot_app.py").rename(project / "app.py")
    assert venv.run("bots", "routes", cwd=project).stdout.splitlines()[0] == ROUTES
    manifest = json.loads(venv.run("bots", "manifest", "--json", cwd=project).stdout)
    assert [i["name"] for i in manifest["integrations"]] == ["echo"]

    empty = tmp_path_factory.mktemp("empty")
    refused = venv.run("bots", "routes", cwd=empty, check=False)
    assert refused.returncode == 2
    assert "found no app: pass --app module:app, set BOTS_APP" in refused.stderr


USER_TESTS = textwrap.dedent('''\
    """A user's tests, with the fixtures the installed package brings to pytest (no conftest, no -p)."""
    from mybot_app import bot


    def test_a_person_says_hi_and_the_bot_says_it_back(workplace):
        priya = workplace(bot).person("Priya Raman")
        priya.send("hi")
        assert priya.wait_for_reply().text == "hi"


    def test_the_tester(bot_tester):
        tester = bot_tester(bot)
        tester.message("hello")
        assert tester.replies[-1].text == "hello"
    ''')


def test_installed_its_pytest_plugin_gives_a_users_tests_the_fixtures(venv: Venv, project: Path) -> None:
    pins = dict(line.split("==") for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    venv.install(*(f"{name}=={pins[name]}" for name in ("pytest", "iniconfig", "pluggy", "Pygments")))
    (project / "test_mybot.py").write_text(USER_TESTS)
    listed = venv.run("pytest", "--fixtures", "-p", "no:cacheprovider", cwd=project).stdout
    assert re.search(r"^bot_tester -- .*bots/pytest_plugin\.py", listed, re.M), listed
    assert re.search(r"^workplace -- .*bots/pytest_plugin\.py", listed, re.M), listed
    done = venv.run("pytest", "-q", "-p", "no:cacheprovider", cwd=project, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_bots_emulator_serves_the_local_workplace_with_its_pages(venv: Venv, project: Path) -> None:
    usage = venv.run("bots", "emulator", "--help", cwd=project).stdout
    assert usage.startswith("usage: bots emulator") and "--reset" in usage and "--db" in usage

    port = free_port()
    server = subprocess.Popen([str(venv.bin / "bots"), "emulator", "--port", str(port), "--db", ":memory:"],
                              cwd=project, env={**os.environ, "DOTENV": "0"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        home = wait_for_page(f"http://127.0.0.1:{port}/", server)
        assert "Workplace" in home.text
        assert requests.get(f"http://127.0.0.1:{port}/static/app.js", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.communicate(timeout=10)


def wait_for_page(url: str, server: subprocess.Popen, seconds: float = 20) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the emulator exited: {server.communicate()[1]}"
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_an_editable_install_maps_exactly_the_three_packages_to_the_checkout(project: Path,
                                                                             tmp_path: Path) -> None:
    editable = new_venv(tmp_path / "venv")
    editable.install("-e", str(ROOT))
    probe = ("import importlib.util as u, json, bots; "
             "print(json.dumps([bots.__file__, [n for n in ('app', 'handlers', 'tests') if u.find_spec(n)]]))")
    where, visible = json.loads(editable.run("python", "-c", probe, cwd=project).stdout)
    assert Path(where) == ROOT / "bots" / "__init__.py"
    assert visible == []
    assert editable.run("bots", "--app", "mybot_app:app", "routes", cwd=project).stdout.startswith(ROUTES)


SHOP_APP = textwrap.dedent('''\
    """Somebody's existing Flask app, with the echo bot embedded in it."""
    from flask import Flask

    from bots.flask import BotServer
    from bots.signature import sign
    from mybot_app import bot

    app = Flask("shop")
    app.config.update(ECHO_APP_SECRET="s" * 32, ECHO_ACCESS_TOKEN="t" * 32, ECHO_VERIFY_TOKEN="v" * 16,
                      INBOX="memory", GRAPH_API_URL="http://127.0.0.1:9", GRAPH_RETRY_ATTEMPTS="1")
    app.add_url_rule("/", view_func=lambda: "the shop")
    BotServer(app, bots=[bot], env={})

    client = app.test_client()
    body = b'{"object": "page", "entry": []}'
    print(client.get("/").text, client.post("/webhooks/echo", data=body,
                                            headers={"X-Hub-Signature-256": sign(body, "s" * 32)}).json)
    ''')


def test_installed_it_embeds_into_a_flask_app_with_a_route_of_its_own(venv: Venv, project: Path) -> None:
    (project / "shop.py").write_text(SHOP_APP)
    done = venv.run("python", "shop.py", cwd=project)
    assert done.stdout.strip() == "the shop {'received': 0}"


def test_installed_mypy_strict_passes_a_typed_user_module_and_catches_a_handler_on_the_wrong_event(
        venv: Venv, project: Path) -> None:
    pins = dict(line.split("==") for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    venv.install(*(f"{name}=={pins[name]}" for name in ("mypy", "mypy_extensions", "pathspec", "librt")
                   if name in pins))
    for name in ("good_bot.py", "wrong_bot.py"):
        (project / name).write_text((ROOT / "tests" / "types" / name).read_text())
    good = venv.run("mypy", "--strict", "--no-incremental", "good_bot.py", cwd=project, check=False)
    assert good.returncode == 0, good.stdout
    wrong = venv.run("mypy", "--strict", "--no-incremental", "wrong_bot.py", cwd=project, check=False)
    assert wrong.returncode == 1 and "Postback" in wrong.stdout, wrong.stdout
