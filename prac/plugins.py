"""A researcher's own strategies, loaded by module name: `PRAC_LTH_PLUGINS=mylab.lowest_loss` imports each module
named (comma-separated), which registers its selectors, pruners and methods (ARCHITECTURE.md, "Adding your own").
They are loaded where a method name is looked up, so every process that runs an experiment (the CLI, a flow,
a worker, the processes of `compare --parallel`) finds them with the same environment; their source files
count in the code version, so results of another plugin code are not reused."""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

from prac.errors import UserError, one_line

ENV = "PRAC_LTH_PLUGINS"


def plugin_modules() -> list[str]:
    return [name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip()]


def load_plugins() -> None:
    """Import every plugin module (once: Python keeps them in sys.modules); one line naming a module that
    cannot be imported."""
    for name in plugin_modules():
        try:
            importlib.import_module(name)
        except Exception as error:  # its own bug or a missing module: the user's code, said in one line
            raise UserError(f"{ENV}: module '{name}' cannot be imported ({one_line(error, 300)})") from None


def plugin_sources() -> list[Path]:
    """The files of the plugin modules (for the code version), found without importing them."""
    files = []
    for name in plugin_modules():
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            raise UserError(f"{ENV}: module '{name}' is not found (is its folder on PYTHONPATH?)")
        files.append(Path(spec.origin))
    return files
