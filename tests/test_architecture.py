"""The package's layers import only downwards, and no module imports itself round a cycle.

The layer order, lowest first (this list is the one place it is named); a module may import from its own
layer's packages and from lower layers only. features holds pretrained networks that describe images (the
digit and attribute classifiers, Inception); training and metrics are peers: each sees models, neither the
other, and api hands the trainer the metrics' figures. latent (projection, directions) and pretrained (generator
files by name) sit beside them, below the api that offers them; export, like the commands, uses the api.
"""
import ast
from pathlib import Path

import ganforge

LAYERS = [
    {"errors", "version", "config"},
    {"nn", "losses", "imaging"},
    {"data"},
    {"features"},
    {"models"},
    {"training", "metrics", "latent", "pretrained"},
    {"api"},
    {"cli", "commands", "translate", "explore", "export", "web", "__init__", "__main__"},
]
PEERS_APART = {("training", "metrics"), ("metrics", "training")}

ROOT = Path(ganforge.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path):
    """Every ganforge module a file imports, at the top or inside a function."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "ganforge":
            base = node.module[len("ganforge"):].lstrip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                yield candidate if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                    (ROOT / Path(*candidate.split("."))).is_dir() else (base or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ganforge":
                    yield alias.name[len("ganforge"):].lstrip(".") or "__init__"


def layer(module: str) -> int:
    top = module.split(".")[0]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def graph():
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: sorted(set(imports_of(path))) for name, path in modules.items()}


def test_every_module_has_a_layer():
    assert [m for m in graph() if not any(m.split(".")[0] in names for names in LAYERS)] == []


def test_imports_run_downwards():
    upward = set()
    for module, imported in graph().items():
        for target in imported:
            a, b = module.split(".")[0], target.split(".")[0]
            if a != b and (layer(target) > layer(module) or (a, b) in PEERS_APART):
                upward.add((module, target))
    assert sorted(upward) == [], "imports that run up or across the layers"


def cycles():
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    edges = graph()
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(frozenset(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return set(found)


def test_no_import_cycles():
    found = cycles()
    assert sorted(map(sorted, found)) == [], "modules that import each other round a cycle"
