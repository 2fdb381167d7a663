"""Names and labels never reach a shell: no shell=True, os.system or os.popen
anywhere in minidock; every command is an argument list."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "minidock"


def test_no_shell_anywhere() -> None:
    found = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("os.system", "os.popen", "asyncio.create_subprocess_shell", "subprocess.getoutput",
                            "subprocess.getstatusoutput"):
                    found.append(f"{path.name}:{node.lineno} {name}")
                for kw in node.keywords:
                    if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        found.append(f"{path.name}:{node.lineno} shell=")
    assert found == []
