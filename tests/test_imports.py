"""The package's import graph, read from the source: no cycles (imports inside functions count too), and the
lower layers never reach up into methods, training, export, the API or the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import brushwork

ROOT = Path(brushwork.__file__).resolve().parent
LOWER = ("brushwork.errors", "brushwork.io", "brushwork.color", "brushwork.losses", "brushwork.weights",
         "brushwork.resources", "brushwork.options", "brushwork.version", "brushwork.backbones")
UPPER = ("brushwork.methods", "brushwork.train", "brushwork.export", "brushwork.api", "brushwork.cli",
         "brushwork.evaluation")
ENGINE = ("brushwork.train.loop", "brushwork.train.data")  # the training loop knows no method: methods use it


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _lazy_target(node: ast.AST) -> str | None:
    """The module of a `lazy("NAME")` call (brushwork/lazy.py): it is imported at first use, still an import."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)):
        return node.args[0].value
    return None


def _imports(tree: ast.AST):
    """Every import statement and lazy import, at any depth, except those under `if TYPE_CHECKING:` (they never
    run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif _lazy_target(node):
            yield ast.Import(names=[ast.alias(name=_lazy_target(node))])
        yield from _imports(node)


def _targets(name: str, node, modules: dict[str, Path]) -> set[str]:
    """The package modules that executing `node` inside module `name` runs: each imported module, and the
    __init__ of every package on its path that `name` is not itself inside (those have already run)."""
    if isinstance(node, ast.Import):
        found = {alias.name for alias in node.names}
    else:
        package = name if _is_package(name, modules) else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = ".".join(p for p in (package if node.level else "", node.module or "") if p)
        found = {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    out = set()
    for target in found:
        if not target.startswith("brushwork"):
            continue
        parts = target.split(".")
        for i in range(2, len(parts)):  # enclosing packages below the root
            parent = ".".join(parts[:i])
            if not (name == parent or name.startswith(parent + ".")):
                out.add(parent)
        out.add(target)
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: set().union(*(_targets(name, n, modules) for n in _imports(ast.parse(path.read_text()))))
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "brushwork.methods.adain" in graph and graph["brushwork.cli"]  # the walk found the package
    cycle = _cycle(graph)
    assert cycle is None, " → ".join(cycle)


def test_the_walk_sees_a_late_import_of_the_own_package():
    """The check itself: an import inside a function that reaches the module's own package is a cycle."""
    graph = import_graph()
    graph["brushwork.methods.base"] = graph["brushwork.methods.base"] | {"brushwork.methods"}
    assert _cycle(graph) is not None


def test_lower_layers_never_import_upper_ones():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith(LOWER):
            upward = sorted(t for t in targets if t.startswith(UPPER))
            assert not upward, f"{name} imports {upward}"
        if name.startswith(ENGINE):
            upward = sorted(t for t in targets if t.startswith(UPPER) and t not in ENGINE)
            assert not upward, f"{name} imports {upward}"
    assert "brushwork.train.loop" in graph["brushwork.methods.fast"]  # the walk sees what a method imports lazily


def test_help_methods_and_argument_errors_need_no_torch():
    """`brushwork --help`, `brushwork methods` and a bad argument answer before torch (two seconds) is imported."""
    script = ("import sys, contextlib, io\n"
              "from brushwork.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
              "    codes = [main(['methods'])]\n"
              "    for argv in (['--help'], ['stylize', '--help'], ['stylize', 'a.png', '--size', 'big']):\n"
              "        try:\n"
              "            main(argv)\n"
              "        except SystemExit as e:\n"
              "            codes.append(e.code)\n"
              "print(codes, sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'PIL'}))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[0, 0, 0, 2] []"
