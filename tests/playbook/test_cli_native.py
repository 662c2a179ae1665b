"""The command line as people meet it: every command's --help read in an 80-column pseudo-terminal
(conventional metavars, nothing cut off), -h and --version, and typer's shell completion run in bash."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
import typer

from provena_ops import __version__
from provena_ops.cli.app import app
from tests.local_servers import read_terminal

BIN = Path(sys.executable).parent


def commands() -> list[list[str]]:
    """Every command and group, as the user types it, from the app itself (a new command is included)."""
    found: list[list[str]] = [[]]

    def walk(command: Any, path: list[str]) -> None:  # typer's own vendored click Command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if not sub.hidden:
                found.append([*path, name])
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def help_at_80_columns(words: list[str]) -> str:
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    process = subprocess.Popen(
        [sys.executable, "-m", "provena_ops", *words, "--help"],
        stdin=terminal, stdout=terminal, stderr=terminal, env={**env, "TERM": "xterm"}, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    shown = read_terminal(controller)
    os.close(controller)
    assert process.wait(timeout=30) == 0
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode()).replace("\r", "")


@pytest.mark.parametrize("words", commands(), ids=lambda words: " ".join(words) or "provena-ops")
def test_help_reads_at_80_columns_with_conventional_metavars(words: list[str]) -> None:
    shown = help_at_80_columns(words)
    assert "Usage: provena-ops" in shown
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert "…" not in shown, [line for line in lines if "…" in line]  # a word rich had to cut
    assert not re.search(r"<(bool|str|int|path|list\[[a-z]+\])>", shown), shown
    assert not re.search(r"\{[a-z_]+\}", shown), shown  # click's {choice} spelling of an argument


def test_the_command_list_holds_the_pipeline_and_lookups() -> None:
    names = {" ".join(words) for words in commands()}
    assert {"validate", "plan", "show", "apply", "undo", "find", "record", "log list", "log show"} <= names


def test_short_help_and_version() -> None:
    short = subprocess.run(
        [sys.executable, "-m", "provena_ops", "plan", "-h"], capture_output=True, text=True
    )
    assert short.returncode == 0 and "--target" in short.stdout
    version = subprocess.run(
        [sys.executable, "-m", "provena_ops", "--version"], capture_output=True, text=True
    )
    assert version.stdout.strip() == __version__


def complete_in_bash(line: str) -> list[str]:
    """What bash offers after `line` (TAB at its end) with the script `--show-completion bash` prints."""
    words = line.split(" ")
    script = (
        'eval "$(provena-ops --show-completion bash)"\n'
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_provena_ops_completion provena-ops; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.splitlines() if word]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_completion_in_bash_offers_commands_options_and_choices() -> None:
    assert complete_in_bash("provena-ops pl") == ["plan"]
    assert "record" in complete_in_bash("provena-ops re")
    assert "--result" in complete_in_bash("provena-ops log list --res")
    assert complete_in_bash("provena-ops plan x.yaml --format ") == ["text", "json", "markdown"]
    assert "--target" in complete_in_bash("provena-ops apply --ta")
