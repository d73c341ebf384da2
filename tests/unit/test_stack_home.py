"""`make clean` and `make down` act only on a stack home the stack made and marked: an empty LOCAL_STACK_HOME, `.`,
`/`, the project, the user's home or any folder without the mark is refused, naming the variable, and nothing in it
is stopped or deleted."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.config import project_root
from recsys_local import stack as stack_module
from recsys_local.home import MARKER, claim, owned
from recsys_local.process import StackError
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack

ROOT = project_root()


def cli(args: list[str], cwd: Path, home: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCAL_STACK_HOME": home}
    return subprocess.run(
        [sys.executable, "-m", "recsys_local", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture
def bystander(tmp_path: Path) -> Path:
    """A folder of somebody else's, with a file in it."""
    folder = tmp_path / "somebody-elses"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    return folder


def test_an_empty_stack_home_is_unset_the_default_never_the_current_directory(bystander, monkeypatch):
    """The defect as found: an empty value was the current directory, and `make clean` removed the checkout. Empty
    is unset, as for every setting: the default `.local/` of the project, a folder the stack makes and marks."""
    monkeypatch.chdir(bystander)
    for empty in ("", "  "):
        assert stack_settings({"LOCAL_STACK_HOME": empty}).home == ROOT / ".local"
    assert stack_settings({}).home == ROOT / ".local"


@pytest.mark.parametrize("command", ["clean", "down"])
def test_clean_and_down_refuse_a_dot_home_and_the_current_directory_stays(bystander, command):
    home = "."
    result = cli([command], cwd=bystander, home=home)
    assert result.returncode == 2
    assert "LOCAL_STACK_HOME" in result.stderr
    assert (bystander / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("command", ["clean", "down"])
def test_clean_and_down_refuse_a_folder_the_stack_did_not_make(bystander, tmp_path, command):
    result = cli([command], cwd=tmp_path, home=str(bystander))
    assert result.returncode == 2
    assert f"LOCAL_STACK_HOME={bystander}: refusing to" in result.stderr
    assert f"it has no {MARKER} file" in result.stderr
    assert (bystander / "thesis.tex").exists()


@pytest.mark.parametrize(
    "place",
    [Path("/"), ROOT, ROOT.parent, Path.home()],
    ids=["root", "project", "project-parent", "user-home"],
)
def test_the_root_the_project_and_the_users_home_are_never_a_home(monkeypatch, place):
    """Refused for what they are, before the mark is looked at; checked with rmtree replaced by a recorder, so a
    regression cannot delete them."""
    deleted: list[Path] = []
    monkeypatch.setattr(stack_module.shutil, "rmtree", lambda path, *a, **k: deleted.append(path))
    stack = Stack(stack_settings({"LOCAL_STACK_HOME": str(place)}))
    with pytest.raises(StackError, match=rf"LOCAL_STACK_HOME={place}: refusing to delete it: it (is|holds)"):
        stack.clean(lambda _m: None)
    with pytest.raises(StackError, match=rf"LOCAL_STACK_HOME={place}: not used as the stack's home"):
        claim(place)
    assert deleted == []


def test_clean_deletes_a_home_the_stack_made_and_only_then(tmp_path):
    home = tmp_path / "stack"
    claim(home)
    assert (home / MARKER).is_file()
    (home / "logs").mkdir()
    result = cli(["clean"], cwd=tmp_path, home=str(home))
    assert result.returncode == 0, result.stderr
    assert not home.exists()
    again = cli(["clean"], cwd=tmp_path, home=str(home))
    assert again.returncode == 0
    assert "nothing to delete" in again.stdout


def test_claim_makes_and_marks_a_new_or_empty_folder_and_refuses_one_with_other_files(tmp_path, bystander):
    empty = tmp_path / "empty"
    empty.mkdir()
    claim(empty)
    claim(tmp_path / "new" / "home")
    assert (empty / MARKER).is_file()
    assert (tmp_path / "new" / "home" / MARKER).is_file()
    with pytest.raises(StackError, match="already holds files the stack did not make"):
        claim(bystander)
    assert not (bystander / MARKER).exists()


def test_a_home_from_before_the_mark_is_adopted_by_up_and_refused_by_clean_until_then(tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "stack.json").write_text("{}")
    with pytest.raises(StackError, match=r"`make up` once marks it"):
        owned(legacy, "delete")
    claim(legacy)
    assert owned(legacy, "delete")


def test_make_clean_with_the_checkout_as_home_in_dot_env_keeps_the_checkout(tmp_path):
    """The Makefile exports `.env`; an empty LOCAL_STACK_HOME once removed the checkout (empty is the default now:
    the test above). A home that is the checkout itself is refused. Run in a copy of the Makefile, so a regression
    deletes only the copy's folder."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "Makefile", checkout / "Makefile")
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    (checkout / ".env").write_text("LOCAL_STACK_HOME=.\n")
    (checkout / "work.py").write_text("print('mine')\n")
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_STACK_HOME"}
    result = subprocess.run(["make", "clean"], cwd=checkout, env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "LOCAL_STACK_HOME" in result.stderr
    assert (checkout / "work.py").exists()


def test_the_projects_own_scratch_folder_is_the_stacks_even_before_a_mark(monkeypatch, tmp_path):
    """`make test` fills .local/ with its lanes and test stacks before `make demo` first runs `make up` there; the
    lanes' scratch folders under it are not stack homes (tests make folders there that must be refused)."""
    from recsys_local import home as home_module

    scratch = tmp_path / "checkout" / ".local"
    (scratch / "test-lanes").mkdir(parents=True)
    monkeypatch.setattr(home_module, "project_scratch", lambda: scratch)
    assert owned(scratch, "delete")
    claim(scratch)
    assert (scratch / MARKER).is_file()
    with pytest.raises(StackError, match=rf"has no {re.escape(MARKER)} file"):
        owned(scratch / "test-lanes", "delete")  # a folder under it is the stack's only when marked


def test_clean_stops_the_stacks_inside_the_home_before_deleting_it(tmp_path, monkeypatch):
    """`make clean` deletes .local/, which holds the test stacks: what they run is stopped first, not orphaned."""
    home = tmp_path / "stack"
    claim(home)
    inner = home / "test-stack"
    claim(inner)
    (inner / "stack.json").write_text("{}")
    legacy = home / "test-stack-from-before-the-mark"
    legacy.mkdir()
    (legacy / "stack.json").write_text("{}")
    stopped: list[Path] = []
    monkeypatch.setattr(Stack, "down", lambda self, progress: stopped.append(self.home))
    Stack(stack_settings({"LOCAL_STACK_HOME": str(home)})).clean(lambda _m: None)
    assert stopped == [home, inner, legacy]
    assert not home.exists()


@pytest.mark.parametrize("name", ["x$(touch pwned)", "x`id`", 'x"y', "x\\y", "x\ny"])
def test_a_stack_home_a_shell_would_act_on_is_refused_naming_the_variable(tmp_path, name):
    """pg_ctl hands the clusters' paths to a shell inside double quotes: a home is data, it never runs a command."""
    with pytest.raises(ValueError, match=r"LOCAL_STACK_HOME=.* contains .*pg_ctl hands their paths to a shell"):
        stack_settings({"LOCAL_STACK_HOME": str(tmp_path / name)})


def test_a_stack_home_with_a_space_is_a_stack_home(tmp_path):
    assert stack_settings({"LOCAL_STACK_HOME": str(tmp_path / "my stack")}).home == tmp_path / "my stack"


def test_postgres_refuses_to_hand_a_shell_active_path_to_pg_ctl(tmp_path):
    """Whatever the caller: the cluster never starts from a path a shell would act on (nothing runs)."""
    from recsys_local import airflow_db, postgres
    from recsys_local.process import StackError

    home = tmp_path / "x$(touch pwned)"
    cfg = airflow_db.AirflowDBConfig(home=home, password="unused")
    with pytest.raises(StackError, match=r"refusing to start with .*a shell would act on its characters"):
        postgres.start_server(cfg, "test cluster", "64MB", 10)
    assert not list(tmp_path.rglob("pwned"))
