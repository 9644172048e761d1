"""Find the bots a deployment runs: every ``Bot`` defined in a module of the ``handlers`` package."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from . import notices
from .bot import Bot
from .errors import ConfigError


def find_bots(package: str = "handlers") -> list[Bot]:
    """Import every module of ``package`` and return the ``Bot`` objects they define, by module name."""
    root = importlib.import_module(package)
    found: dict[str, tuple[Bot, str]] = {}
    for module_info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{module_info.name}")
        for value in vars(module).values():
            if not isinstance(value, Bot):
                continue
            where = f"{package}.{module_info.name}"
            if value.name in found and found[value.name][0] is not value:
                raise ConfigError(package, notices.DUPLICATE_BOT.format(
                    name=value.name, first=found[value.name][1], second=where))
            found[value.name] = (value, where)
    return [bot for bot, _ in found.values()]


def select(bots: Iterable[Bot], names: list[str] | None, package: str = "handlers") -> list[Bot]:
    """The bots named in ``BOTS`` (all when ``names`` is None); an unknown name is a start-up error."""
    bots = list(bots)
    if names is None:
        return bots
    by_name = {bot.name: bot for bot in bots}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ConfigError("BOTS", notices.UNKNOWN_BOTS.format(
            names=", ".join(unknown), package=package, found=", ".join(sorted(by_name)) or "none"))
    return [by_name[name] for name in dict.fromkeys(names)]
