"""The version of the science code that results are keyed by: a hash of prac/'s sources.

A cached stage, the shared round 0 file, a round checkpoint and a finished experiment's rounds.json are
reused only by the code that wrote them (DESIGN §5): a fix in CEP, say, changes this hash, so the next
run recomputes instead of handing back what the old code found. Every file of prac/ counts, presentation
included: a hash cannot tell which edits change numbers, and recomputing is safe where reusing is not.
`runtime.code_version` pins another value, to reuse results of earlier code on purpose. A researcher's plugin
modules (prac.plugins) count too.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from prac.settings.config import ExperimentConfig
from prac.plugins import plugin_sources

SCIENCE_ROOT = Path(__file__).resolve().parent


def science_code_version() -> str:
    """16 hex digits of the sha256 over prac/'s Python sources (relative path and bytes, in path order), and
    over the files of the plugin modules named in PRAC_LTH_PLUGINS (prac.plugins), if any."""
    return _version(tuple(plugin_sources()))


@lru_cache(maxsize=8)
def _version(plugins: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in sorted(SCIENCE_ROOT.rglob("*.py")):
        digest.update(path.relative_to(SCIENCE_ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for path in plugins:  # by name and bytes: the same plugin code gives the same version wherever it lies
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_version_of(config: ExperimentConfig) -> str:
    """The code version this experiment's results are stored and looked up under: pinned, or this code's."""
    return config.runtime.code_version or science_code_version()
