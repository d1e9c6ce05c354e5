"""Import directions: app/quality is a library, the demo sits above it, workers never import the
web layer, and app/ + workers/ have no import cycle (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "workers")
WEB = ("app.main", "fastapi")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path, module: str) -> set[str]:
    """Every module `path` imports, at any depth of the file (module and function level)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from app.demo import demo` imports the submodule app.demo.demo
            found.update(
                f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")
            )
    return found


def _graph() -> dict[str, set[str]]:
    files = {
        _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }
    return {module: _imports(path, module) for module, path in files.items()}


GRAPH = _graph()


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(source_prefix: str, banned) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _under(module, source_prefix)
        for target in targets
        if banned(target)
    )


def test_quality_imports_nothing_else_of_app() -> None:
    bad = _violations(
        "app.quality", lambda t: _under(t, "app") and not _under(t, "app.quality") and t != "app"
    )
    assert not bad, "app/quality is a library and imports nothing else of app/:\n" + "\n".join(bad)


def test_quality_never_imports_the_demo() -> None:
    bad = _violations("app.quality", lambda t: _under(t, "app.demo"))
    assert not bad, "app/quality must not import the demo:\n" + "\n".join(bad)


def test_workers_never_import_the_web_layer() -> None:
    def web(target: str) -> bool:
        return any(_under(target, w) for w in WEB) or (
            _under(target, "app") and target.rsplit(".", 1)[-1] == "router"
        )

    bad = _violations("workers", web)
    assert not bad, "workers/ must not import the web layer:\n" + "\n".join(bad)


def _internal_edges() -> dict[str, set[str]]:
    """The graph restricted to modules of app/ and workers/ (a package import counts as its
    __init__)."""
    return {
        module: {t for t in targets if t in GRAPH and t != module}
        for module, targets in GRAPH.items()
    }


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    cycle = _find_cycle(_internal_edges())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_graph_sees_function_level_imports() -> None:
    # The CLI imports its commands' code on use; the checker must see those imports.
    assert "workers.run" in GRAPH["app.cli"]
    assert "app.demo.demo" in GRAPH["app.demo.builtins"]


MAX_MODULE_LINES = 350


def test_no_module_of_the_service_passes_350_lines() -> None:
    """A module that needs a table of contents is two modules (issue 29)."""
    long = {
        str(path.relative_to(ROOT)): n
        for top in ("app", "workers")
        for path in (ROOT / top).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
