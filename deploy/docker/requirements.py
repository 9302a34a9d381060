"""Print the third-party requirements that pyproject.toml files declare, one a line.

    python requirements.py pyproject.toml 'clients/pyproject.toml[cli]'

For each file: its build requirements ([build-system] requires), its dependencies and those
of the extras named in brackets. Requirements on a project named by one of the files are left
out: those are built from the sources, not downloaded. install-dependencies.sh installs the
result before the sources are copied into the image, so that the layer holding the
dependencies is rebuilt only when these files change.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

_ARGUMENT = re.compile(r"^(?P<path>[^\[\]]+?)(?:\[(?P<extras>[^\[\]]*)\])?$")
_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def normalized(name: str) -> str:
    """A project name as PyPI compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalized project name a requirement string is about."""
    match = _NAME.match(requirement)
    if match is None:
        msg = f"not a requirement: {requirement!r}"
        raise ValueError(msg)
    return normalized(match.group(1))


def parse_argument(argument: str) -> tuple[Path, list[str]]:
    """Split "path/pyproject.toml[extra1,extra2]" into the path and the extras."""
    match = _ARGUMENT.match(argument.strip())
    if match is None:
        msg = f"expected PATH or PATH[EXTRA,...], not {argument!r}"
        raise ValueError(msg)
    extras = [extra.strip() for extra in (match.group("extras") or "").split(",")]
    return Path(match.group("path")), [extra for extra in extras if extra]


def requirements(arguments: Iterable[str]) -> list[str]:
    """The third-party requirements of the given pyproject files, in order, without repeats."""
    found: list[str] = []
    local: set[str] = set()
    for argument in arguments:
        path, extras = parse_argument(argument)
        with path.open("rb") as file:
            document = tomllib.load(file)
        project = document["project"]
        local.add(normalized(project["name"]))
        found.extend(document.get("build-system", {}).get("requires", []))
        found.extend(project.get("dependencies", []))
        optional = project.get("optional-dependencies", {})
        for extra in extras:
            if extra not in optional:
                msg = f"{path}: no optional dependencies named {extra!r}"
                raise ValueError(msg)
            found.extend(optional[extra])
    unique: list[str] = []
    for requirement in found:
        if requirement_name(requirement) not in local and requirement not in unique:
            unique.append(requirement)
    return unique


def main(argv: Sequence[str]) -> int:
    """Print the requirements of the files named in `argv`; 2 on a usage error."""
    if not argv:
        sys.stderr.write(f"usage: {Path(__file__).name} PYPROJECT[EXTRA,...] ...\n")
        return 2
    try:
        lines = requirements(argv)
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as err:
        sys.stderr.write(f"{Path(__file__).name}: {err}\n")
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
