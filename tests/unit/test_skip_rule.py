"""The rule that `make test` cannot pass by skipping (tests/conftest.py's ``SkipRule``, on with RECSYS_FAIL_ON_SKIP=1),
run on small suites of its own through ``pytester``."""

from __future__ import annotations

from pathlib import Path

import pytest
import skip_allowlist

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).parents[1] / "conftest.py"

SUITE = """
import pytest

def test_runs():
    assert True

def test_skipped():
    pytest.skip("needs a GPU")
"""


@pytest.fixture
def run_suite(pytester: pytest.Pytester, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """``run_suite(source, fail_on_skip)``: the suite run in-process with this repository's conftest as a plugin."""
    conftest = next(
        p for p in request.config.pluginmanager.get_plugins() if getattr(p, "__file__", None) == str(CONFTEST)
    )

    def run(source: str, fail_on_skip: str | None) -> pytest.RunResult:
        if fail_on_skip is None:
            monkeypatch.delenv("RECSYS_FAIL_ON_SKIP", raising=False)
        else:
            monkeypatch.setenv("RECSYS_FAIL_ON_SKIP", fail_on_skip)
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the suites need no plugin; scanning costs 1.5 s
        pytester.makeini("[pytest]\n")  # its own rootdir: node ids as written, wherever the scratch folder lives
        pytester.makepyfile(test_suite=source)
        return pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[conftest])

    return run


def test_an_unallowlisted_skip_fails_the_run_when_the_rule_is_on(run_suite):
    result = run_suite(SUITE, "1")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["REFUSED  test_suite.py::test_skipped: needs a GPU", "1 skip(s) not on the allowlist*"]
    )


@pytest.mark.parametrize("fail_on_skip", [None, "", "0"])
def test_a_skip_passes_when_the_rule_is_off(run_suite, fail_on_skip):
    result = run_suite(SUITE, fail_on_skip)

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1)
    assert "REFUSED" not in result.stdout.str()


@pytest.mark.parametrize("entry", ["test_suite.py::test_skipped", "test_suite.py::test_skip*"])
def test_an_allowlisted_skip_passes_and_its_reason_is_printed(run_suite, monkeypatch, entry):
    monkeypatch.setitem(skip_allowlist.ALLOWED_SKIPS, entry, "no machine of ours has a GPU")

    result = run_suite(SUITE, "1")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["allowed  test_suite.py::test_skipped: needs a GPU (allowed because: no machine of ours has a GPU)"]
    )
    assert "REFUSED" not in result.stdout.str()


def test_an_allowlist_entry_covers_only_what_it_names(run_suite, monkeypatch):
    monkeypatch.setitem(skip_allowlist.ALLOWED_SKIPS, "test_suite.py::test_other", "another test's reason")

    result = run_suite(SUITE + "\ndef test_other():\n    pytest.skip('fine')\n", "1")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["allowed  test_suite.py::test_other: fine*", "REFUSED  test_suite.py::test_skipped*"])


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            "import pytest\npytest.importorskip('no_such_module_here')\n\ndef test_x():\n    pass\n",
            "*no_such_module_here*",
        ),
        (
            "import pytest\n\n@pytest.mark.xfail(reason='known bug')\ndef test_x():\n    assert False\n",
            "*test_x: xfailed: known bug",
        ),
        (
            "import pytest\n\n@pytest.mark.skipif(True, reason='not here')\ndef test_x():\n    pass\n",
            "*test_x: not here",
        ),
    ],
    ids=["module-level", "xfail", "skipif"],
)
def test_every_kind_of_skip_counts(run_suite, source, said):
    result = run_suite(source, "1")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"REFUSED  {said}"])


def test_a_value_other_than_0_or_1_is_refused(run_suite):
    result = run_suite(SUITE, "yes")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*RECSYS_FAIL_ON_SKIP='yes': expected 1*"])
