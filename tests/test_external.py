"""tests/external.py: a test needing something outside the Python install skips with one line naming what to
install, and fails instead where CI required it."""
from __future__ import annotations

import pytest

import external


@pytest.fixture
def absent(monkeypatch):
    monkeypatch.setitem(external.EXTERNALS, "thing", external.External(
        "thing", lambda: False, "apt-get install thing", "PRAC_REQUIRE_THING"))
    monkeypatch.delenv("PRAC_REQUIRE_THING", raising=False)
    return monkeypatch


def test_a_missing_external_skips_with_what_to_install(absent):
    with pytest.raises(pytest.skip.Exception, match=r"^no thing \(apt-get install thing; PRAC_REQUIRE_THING=1 "):
        external.require("thing")


def test_a_required_missing_external_fails(absent):
    absent.setenv("PRAC_REQUIRE_THING", "1")
    with pytest.raises(pytest.fail.Exception, match=r"^PRAC_REQUIRE_THING=1 but there is no thing \(apt-get"):
        external.require("thing")


def test_a_present_external_neither_skips_nor_fails(monkeypatch):
    monkeypatch.setitem(external.EXTERNALS, "thing", external.External("thing", lambda: True, "-", "PRAC_REQUIRE_THING"))
    monkeypatch.setenv("PRAC_REQUIRE_THING", "1")
    external.require("thing")


def test_the_needs_marker_is_what_the_setup_hook_checks(absent, request):
    request.node.add_marker(pytest.mark.needs("thing"))
    with pytest.raises(pytest.skip.Exception, match="^no thing"):
        external.check_needs(request.node)


def test_every_external_names_its_install_and_variable():
    for what, e in external.EXTERNALS.items():
        assert e.what == what and e.install and e.require_env.startswith("PRAC_REQUIRE_")
        assert isinstance(e.present(), bool)
