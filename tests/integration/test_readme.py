"""The README's Python snippets run against a real server."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_python_snippets_run(server, capsys):
    snippets = python_snippets()
    assert snippets, "the README shows how to call the API from Python"
    for snippet in snippets:
        exec(compile(snippet.replace("localhost:50051", server.target), "README", "exec"), {})
    assert capsys.readouterr().out.strip()
