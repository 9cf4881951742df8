"""The code style is checked with the suite (README's test command): ruff, configured in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is in the dev extra: pip install -e '.[dev]'"
    r = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def _imports_of_modules() -> dict[str, set[str]]:
    """module -> the limr_exp modules it imports anywhere in its file (module level or inside functions)."""
    import ast

    graph = {}
    for path in sorted((ROOT / "limr_exp").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("limr_exp"):
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("limr_exp")}
        graph[name] = found
    return {m: {i for i in imports if i in graph and i != m} for m, imports in graph.items()}


def test_config_is_a_leaf_that_imports_no_engine():
    """config.py is the floor: the plug-ins extend its schemas, it imports none of them (nor anything above)."""
    assert _imports_of_modules()["limr_exp.config"] <= {"limr_exp.errors", "limr_exp.rewards.settings"}


def test_no_import_circle_between_modules():
    """No two modules import each other, directly or round a loop (function-local imports included)."""
    edges = _imports_of_modules()
    state: dict[str, int] = {}

    def loop_from(m, path):
        state[m] = 1
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return path + [m, n]
            if n not in state and (found := loop_from(n, path + [m])):
                return found
        state[m] = 2
        return None

    for module in sorted(edges):
        found = loop_from(module, []) if module not in state else None
        assert found is None, "import circle: " + " -> ".join(found)
