"""The stack's home folder (``LOCAL_STACK_HOME``): made and marked by the stack, deleted only when it holds the mark.

``make clean`` deletes a whole folder, so which folder is a setting's word only when the stack itself made it: the
mark (:data:`MARKER`) is written when the stack creates the folder and checked before anything stops or deletes; the
project's own ``.local/`` (the default) counts as made by the stack. A folder that is the file system's root, the
project, the current directory, the user's home or one of their parents is never a stack home, marked or not.
"""

from __future__ import annotations

import os
from pathlib import Path

from recsys.config import project_root
from recsys_local.process import StackError

#: The file that says "the local stack made this folder"; its text says so to a person who finds it.
MARKER = ".recsys-stack-home"
#: Files only the stack writes: a folder holding one was made by a stack from before the mark, and is adopted.
STACK_FILES = ("stack.json", "secrets.json", "stack.env")


def project_scratch() -> Path:
    """The project's own scratch folder (``.local/``, git-ignored): the default home, holding the test stacks' and
    the test lanes' folders. The project makes it, so it is the stack's to use and delete; a folder under it is not,
    unless marked (a test's scratch folder there is no stack home)."""
    return project_root().resolve() / ".local"


def _is_project_scratch(home: Path) -> bool:
    return home == project_scratch()


def _never_a_home(home: Path) -> str | None:
    """Why ``home`` can never be a stack home, or None."""
    places = {
        "the file system's root": Path("/"),
        "the project's folder": project_root().resolve(),
        "the current directory": Path.cwd().resolve(),
        "your home folder": Path.home().resolve(),
    }
    for name, place in places.items():
        if home == place:
            return f"it is {name}"
        if home in place.parents:
            return f"it holds {name} ({place})"
    return None


def claim(home: Path) -> None:
    """Make ``home`` the stack's home before anything is written in it: create and mark it, or accept it when it
    carries the mark (or files only the stack writes, from before the mark); refuse any other folder."""
    if (home / MARKER).is_file() and _never_a_home(home) is None:
        return
    reason = _never_a_home(home)
    if reason is None and home.exists():
        if not home.is_dir():
            reason = "it is not a folder"
        elif (
            any(home.iterdir())
            and not any((home / name).is_file() for name in STACK_FILES)
            and not _is_project_scratch(home)
        ):
            reason = "it already holds files the stack did not make: choose a new or an empty folder"
    if reason is not None:
        raise StackError(f"LOCAL_STACK_HOME={home}: not used as the stack's home: {reason}")
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text(
        "This folder was made by the recommender platform's local stack (LOCAL_STACK_HOME).\n"
        "`make clean` deletes it, and only it, because of this file.\n"
    )


def owned(home: Path, action: str) -> bool:
    """True when ``home`` is the stack's (marked), False when it does not exist (nothing to do); raises naming
    ``LOCAL_STACK_HOME`` for any other folder, before ``action`` touches it."""
    reason = _never_a_home(home)
    if reason is None:
        if not os.path.lexists(home):
            return False
        if not (home / MARKER).is_file() and not _is_project_scratch(home):
            reason = f"it has no {MARKER} file, so the stack did not make it"
            if any((home / name).is_file() for name in STACK_FILES):
                reason += " (a stack home from before that file: `make up` once marks it)"
    if reason is not None:
        raise StackError(f"LOCAL_STACK_HOME={home}: refusing to {action} it: {reason}")
    return True
