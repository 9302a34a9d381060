"""Reading the image and deployment files the way the tools that use them do.

The Dockerfile is parsed with dockerfile-parse into stages; .dockerignore is matched with the
Docker builder's rules (the last matching pattern wins, a pattern also excludes whatever lies
below a directory it matches, `!` re-includes); YAML is read with PyYAML (merge keys and
all); Compose's `${NAME:-default}` interpolation is resolved as Compose does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
K8S = DEPLOY / "k8s"
YAMLLINT_CONFIG = DEPLOY / ".yamllint.yaml"

SETTING = re.compile(r"\bINCIDENTS_[A-Z0-9_]*[A-Z0-9]\b")


def tool(name: str) -> str:
    """The path of a command-line tool of the dev extra; fails the test when it is missing."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: `pip install -e '.[dev]'` installs it"
    return found


def run_tool(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repository root, returning its result whatever its exit code."""
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def yaml_documents(path: Path) -> list[Any]:
    """Every document of a YAML file (empty documents left out)."""
    with path.open(encoding="utf-8") as file:
        return [document for document in yaml.safe_load_all(file) if document is not None]


def yaml_document(path: Path) -> Any:
    """The single document of a YAML file."""
    (document,) = yaml_documents(path)
    return document


def settings_read_by_the_code() -> set[str]:
    """Every INCIDENTS_* name that the server's and the worker's code mention."""
    names: set[str] = set()
    for package in ("service", "projections"):
        for source in (ROOT / package).rglob("*.py"):
            names |= set(SETTING.findall(source.read_text(encoding="utf-8")))
    return names


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (kustomize's `envs`), comments and blanks skipped."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        assert separator, f"{path.name}: not KEY=VALUE: {raw!r}"
        values[key.strip()] = value
    return values


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Resolve Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} forms in `value`."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        if op in {":-", "-"}:
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        if op in {":?", "?"}:
            assert current, f"{name} must be set: {arg}"
            return current
        return current or ""

    resolved = _INTERPOLATION.sub(replace, value)
    assert "$" not in resolved.replace("$$", ""), f"unsupported interpolation in {value!r}"
    return resolved.replace("$$", "$")


# The Dockerfile.


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its name (upper case), arguments and first line."""

    name: str
    value: str
    line: int

    def flags(self) -> tuple[dict[str, str], str]:
        """Leading `--flag=value` options (RUN --mount, COPY --from, ...) and the rest."""
        options: dict[str, str] = {}
        rest = self.value.strip()
        while rest.startswith("--"):
            option, _, rest = rest.partition(" ")
            key, _, value = option[2:].partition("=")
            options[key] = value
            rest = rest.strip()
        return options, rest

    def env_pairs(self) -> dict[str, str]:
        """The KEY=VALUE pairs of an ENV instruction."""
        assert self.name == "ENV"
        pairs: dict[str, str] = {}
        for word in shlex.split(self.value):
            key, separator, value = word.partition("=")
            assert separator, f"line {self.line}: ENV without '=' is not used here: {word!r}"
            pairs[key] = value
        return pairs

    def exec_form(self) -> list[str]:
        """The JSON array of a CMD, ENTRYPOINT or HEALTHCHECK ... CMD in exec form."""
        _, rest = self.flags()
        if self.name == "HEALTHCHECK":
            keyword, _, rest = rest.partition(" ")
            assert keyword == "CMD", f"line {self.line}: HEALTHCHECK {keyword}"
        words = json.loads(rest)
        assert isinstance(words, list), f"line {self.line}: not an exec form: {rest!r}"
        assert all(isinstance(word, str) for word in words), rest
        return [str(word) for word in words]


@dataclass
class Stage:
    """A build stage: its base image, its name and its instructions after FROM."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, name: str) -> list[Instruction]:
        """The instructions of that name, in order."""
        return [instruction for instruction in self.instructions if instruction.name == name]

    def env(self) -> dict[str, str]:
        """The ENV pairs of the stage, in order, as written (not expanded)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(instruction.env_pairs())
        return values

    def last(self, name: str) -> Instruction:
        """The last instruction of that name (the one in force); fails when there is none."""
        found = self.all(name)
        assert found, f"stage {self.name or self.base!r} has no {name}"
        return found[-1]


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The stages of a Dockerfile, global ARG defaults substituted in their FROM lines."""
    parser = DockerfileParser(path=str(path))
    structure: list[dict[str, Any]] = parser.structure
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for item in structure:
        instruction = Instruction(
            name=str(item["instruction"]).upper(),
            value=str(item["value"]),
            line=int(item["startline"]) + 1,
        )
        if instruction.name == "COMMENT":
            continue
        if instruction.name == "FROM":
            image, _, alias = instruction.value.partition(" AS ")
            image = expand(image.strip(), global_args)
            stages.append(Stage(base=image, name=alias.strip() or None))
        elif not stages:
            assert instruction.name == "ARG", f"line {instruction.line}: before any FROM"
            key, _, default = instruction.value.partition("=")
            global_args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append(instruction)
    return stages


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_VARIABLE = re.compile(rf"\$(?:\{{(?P<braced>{_NAME})\}}|(?P<bare>{_NAME}))")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Expand $NAME and ${NAME} as the Dockerfile does in ENV and FROM (unset is empty)."""
    return _VARIABLE.sub(lambda m: env.get(m.group("braced") or m.group("bare"), ""), value)


# .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out += "[" + pattern[index + 1 : end].replace("\\", "\\\\") + "]"
            index = end + 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out)


@dataclass(frozen=True)
class IgnoreRule:
    """One .dockerignore line: a pattern, and whether it re-includes (`!`)."""

    pattern: str
    include: bool
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        """Whether the pattern matches `path` or a directory above it."""
        parts = path.split("/")
        return any(
            self.regex.fullmatch("/".join(parts[:count])) for count in range(1, len(parts) + 1)
        )


@dataclass(frozen=True)
class DockerIgnore:
    """The rules of a .dockerignore file, applied as the Docker builder applies them."""

    rules: tuple[IgnoreRule, ...]

    @classmethod
    def read(cls, path: Path = DOCKERIGNORE) -> DockerIgnore:
        """Parse a .dockerignore file."""
        rules: list[IgnoreRule] = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
            rules.append(IgnoreRule(pattern, include, _pattern_regex(pattern)))
        return cls(tuple(rules))

    def excluded(self, path: str) -> bool:
        """Whether `path` (relative to the context, with /) is left out of the context."""
        verdict = False
        for rule in self.rules:
            if rule.matches(path):
                verdict = not rule.include
        return verdict

    def _may_include_below(self, directory: str) -> bool:
        return any(
            rule.include and (rule.pattern + "/").startswith(directory + "/") for rule in self.rules
        )

    def context_files(self, root: Path = ROOT) -> Iterator[str]:
        """The files of the build context, relative to `root`."""
        for current, directories, files in os.walk(root):
            relative = Path(current).relative_to(root).as_posix()
            prefix = "" if relative == "." else relative + "/"
            directories[:] = [
                name
                for name in directories
                if not self.excluded(prefix + name) or self._may_include_below(prefix + name)
            ]
            for name in files:
                if not self.excluded(prefix + name):
                    yield prefix + name

    def copy_context(self, destination: Path, root: Path = ROOT) -> None:
        """Copy the build context of `root` to `destination`."""
        for relative in self.context_files(root):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, target)
