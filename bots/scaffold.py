"""``bots new NAME``: a new bot module and its test, from templates that pass their own test.

The module goes in the handlers folder (``handlers/NAME.py``), the test beside the project's others
(``tests/test_NAME.py``); a bad name or a file that is there already is refused with the reason, and nothing is
written then.
"""

from __future__ import annotations

import json
import keyword
from importlib.resources import files
from pathlib import Path
from string import Template

from .bot import NAME


class ScaffoldError(Exception):
    """The bot cannot be written: the message says why and what to do instead."""


def check_name(name: str) -> None:
    """Refuse a name that cannot be a bot's (it prefixes its settings and names its module)."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(f"{name!r} cannot name a bot: use lower-case letters, digits and _, starting with a "
                            "letter (it prefixes the settings: mybot -> MYBOT_APP_SECRET), e.g. `bots new mybot`")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword, so no module can be named for it: pick another name")


def new_bot(name: str, handlers: Path = Path("handlers"), tests: Path = Path("tests"),
            description: str = "") -> list[Path]:
    """Write ``handlers/NAME.py`` and ``tests/test_NAME.py``; the paths written."""
    check_name(name)
    module, test = handlers / f"{name}.py", tests / f"test_{name}.py"
    existing = [path for path in (module, test) if path.exists()]
    if existing:
        raise ScaffoldError(f"{' and '.join(map(str, existing))} exist{'s' if len(existing) == 1 else ''} already: "
                            "nothing was written (pick another name, or remove the file first)")
    values = {"name": name, "description": json.dumps(description or f"The {name} bot"), "test_path": str(test),
              "module": ".".join((*_package(handlers).parts, name))}
    tests.mkdir(parents=True, exist_ok=True)
    handlers.mkdir(parents=True, exist_ok=True)
    if not (handlers / "__init__.py").exists():
        (handlers / "__init__.py").write_text("")
    module.write_text(_render("bot.py.tmpl", values))
    test.write_text(_render("test_bot.py.tmpl", values))
    return [module, test]


def _package(handlers: Path) -> Path:
    """The handlers folder as an import path from here (``handlers``), or by its own name when it is elsewhere."""
    try:
        return handlers.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(handlers.resolve().name)


def _render(template: str, values: dict[str, str]) -> str:
    return Template((files("bots") / "templates" / template).read_text()).substitute(values)
