"""The ``bots`` console script: every ``flask bots`` command, plus ``bots new`` and ``bots emulator``, no ``flask``.

``bots routes`` is ``flask bots routes``: the commands are the ones in :mod:`bots.flask.cli`, looked up there each
time, so they are written once. The app is found the way ``flask --app`` finds it: ``--app module:app`` (or
``module:create_app()``), else ``BOTS_APP``, else ``wsgi.py`` or ``app.py`` in the current directory, which goes
on ``sys.path`` first; ``.env`` and ``.flaskenv`` are read as ``flask`` reads them (``FLASK_SKIP_DOTENV=1`` skips
them). The app is built only by a command that needs it, so ``bots --help``, ``bots new NAME`` (a new bot and its
test) and ``bots emulator`` work in an empty folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import NoAppException, ScriptInfo, load_dotenv
from flask.helpers import get_load_dotenv

from .. import __version__
from .cli import bots_cli

APP_HELP = ("The app to serve, as for `flask --app`: module:app or module:create_app(); "
            "default: wsgi.py or app.py in the current directory.")


class AppLocator(ScriptInfo):
    """Flask's ``ScriptInfo`` (the object ``with_appcontext`` loads the app from), with a refusal
    that names this command's ``--app`` and ``BOTS_APP`` instead of ``flask --app`` and ``FLASK_APP``."""

    def __init__(self, app_import_path: str | None) -> None:
        super().__init__(app_import_path=app_import_path, set_debug_flag=False)

    def load_app(self) -> Flask:
        try:
            return super().load_app()
        except NoAppException as error:
            if self.app_import_path:
                raise
            raise NoAppException("found no app: pass --app module:app, set BOTS_APP, or run where app.py "
                                 "(or wsgi.py) builds one") from error


class BotsGroup(click.Group):
    """The commands of ``bots_cli`` (looked up there, so one added to it appears here too) and
    ``emulator``. Reads ``.env`` before parsing, so ``BOTS_APP`` may come from it, as ``flask`` does."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*bots_cli.list_commands(ctx), *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or bots_cli.get_command(ctx, cmd_name)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        if get_load_dotenv():
            load_dotenv()
        return super().make_context(info_name, args, parent, **extra)


@click.group("bots", cls=BotsGroup, help=bots_cli.help)
@click.option("--app", "app_import_path", envvar="BOTS_APP", metavar="IMPORT", help=APP_HELP)
@click.version_option(__version__, "--version", package_name="workplace-bots", prog_name="bots")
@click.pass_context
def cli(ctx: click.Context, app_import_path: str | None) -> None:
    # bots_cli's commands are wrapped in flask's with_appcontext: it loads the app from this object
    # the first time a command runs, and pushes its app context around the command.
    ctx.obj = AppLocator(app_import_path)


@cli.command("emulator", add_help_option=False,
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: Sequence[str]) -> None:
    """Serve the local Workplace, as `python -m emulator` does (its options: `bots emulator --help`)."""
    from emulator.__main__ import main as serve  # only this command needs the emulator loaded

    serve(list(args), prog="bots emulator")


@cli.command("new")
@click.argument("name")
@click.option("--description", default="", help="What the bot is for (the directory shows it).")
@click.option("--handlers", "handlers", default="handlers", show_default=True, type=click.Path(path_type=Path),
              help="The folder of bot modules.")
@click.option("--tests", "tests", default="tests", show_default=True, type=click.Path(path_type=Path),
              help="The folder of the project's tests.")
def new(name: str, description: str, handlers: Path, tests: Path) -> None:
    """Write a new bot, handlers/NAME.py, and its passing test, tests/test_NAME.py (`make run` serves it at once)."""
    from ..scaffold import ScaffoldError, new_bot

    try:
        written = new_bot(name, handlers, tests, description)
    except ScaffoldError as error:
        raise click.ClickException(str(error)) from None
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: under `make run` it is live within seconds (start it if it is not running); "
               f"`pytest {written[1]}` tests it")


def main(argv: Sequence[str] | None = None) -> None:
    """The console script's entry point (``[project.scripts]`` in pyproject.toml)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="bots")


if __name__ == "__main__":
    main()
