"""The README's `incidents` examples name commands and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from incident_registry_client.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"


def examples() -> list[list[str]]:
    """Each `incidents …` command line of the README's Operator CLI section, as words."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Operator CLI") : text.index("## API overview")]
    found = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            code = line.split(" # ", 1)[0].split("  #", 1)[0]
            for part in re.split(r"&&|\|", code):
                words = shlex.split(part)
                while words and "=" in words[0]:
                    words.pop(0)  # VAR=value before the command
                if words and words[0] == "incidents":
                    found.append(words[1:])
    return found


def options_of(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_the_section_has_examples():
    assert len(examples()) >= 25


def resolve(words: list[str]) -> tuple[Any, list[str]]:
    """The command the words name (after the global options), and the words left."""
    root: Any = typer.main.get_command(app)
    flags = {"--json", "--no-progress", "--progress", "--insecure"}
    while words and words[0].startswith("--"):  # global options first
        option = words.pop(0)
        assert option in options_of(root), option
        if option not in flags:
            words.pop(0)
    command = root
    while hasattr(command, "commands") and words and words[0] in command.commands:
        command = command.commands[words.pop(0)]
    return command, words


@pytest.mark.parametrize("words", examples(), ids=lambda words: " ".join(words[:3]))
def test_each_example_names_a_command_and_its_options(words):
    if "--help" in words:
        return  # every command has it
    command, rest = resolve(list(words))
    assert not hasattr(command, "commands"), f"no such command: {rest}"
    for word in rest:
        if word.startswith("--"):
            assert word in options_of(command), f"{command.name} has no option {word}"
