"""Find the bots a deployment runs: every ``Bot`` defined in a module of the ``handlers`` package."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from collections.abc import Iterable
from types import ModuleType

from . import notices
from .bot import Bot
from .errors import ConfigError

logger = logging.getLogger("bots")


def find_bots(package: str = "handlers", skip_broken: bool = False) -> list[Bot]:
    """Import every module of ``package`` and return the ``Bot`` objects they define, by module name.

    With ``skip_broken`` (``MISSING_SETTINGS=skip``, as ``make run`` sets) a module that fails to import is
    logged with its traceback and left out, so one half-written bot does not stop the others."""
    root = importlib.import_module(package)
    found: dict[str, tuple[Bot, str]] = {}
    for module_info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        module = _load(f"{package}.{module_info.name}", skip_broken)
        if module is None:
            continue
        for value in vars(module).values():
            if not isinstance(value, Bot):
                continue
            where = f"{package}.{module_info.name}"
            if value.name in found and found[value.name][0] is not value:
                raise ConfigError(package, notices.DUPLICATE_BOT.format(
                    name=value.name, first=found[value.name][1], second=where))
            found[value.name] = (value, where)
    return [bot for bot, _ in found.values()]


def _load(name: str, skip_broken: bool) -> ModuleType | None:
    """The module ``name``, or None when it fails to import and ``skip_broken`` says to log and go on."""
    try:
        return importlib.import_module(name)
    except Exception as error:
        if not skip_broken:
            raise
        sys.modules.pop(name, None)
        logger.error(notices.BROKEN_MODULE.format(module=name, error=f"{type(error).__name__}: {error}"),
                     exc_info=True)
        return None


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
