"""The package layout is the architecture: every module's imports (read with ast, function-
level imports included) go to its own layer or lower ones, and no import circle exists.

Layers, lowest first: errors and leaf utilities; attributes, metadata, factories; the XML
parser (XML <-> ExperimentData only); the design model and its checks; the testbed contract
and the experiment controller; nepi.rpc (daemons, clients, launchers, cleanup); the testbeds
(which may run parts of themselves as daemons); the public facade nepi.util.proxy; the command line."""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "nepi")

# (layer number, module names or prefixes ending in "."), lowest first
LAYERS = [
    (0, ["nepi", "nepi.errors", "nepi.util", "nepi.util.constants", "nepi.util.environ",
         "nepi.util.files", "nepi.util.graphical_info", "nepi.util.guid", "nepi.util.logfile",
         "nepi.util.netrefs", "nepi.util.rootdirs", "nepi.util.tags", "nepi.util.validation",
         "nepi.util.tunchannel", "nepi.util.rootfiles", "nepi.util.gcpause"]),
    (1, ["nepi.core", "nepi.core.attributes", "nepi.core.connector", "nepi.core.factory",
         "nepi.core.metadata"]),
    (2, ["nepi.util.parser."]),
    (3, ["nepi.core.design", "nepi.core.checks", "nepi.core.box"]),
    (4, ["nepi.core."]),
    (5, ["nepi.rpc."]),
    (6, ["nepi.testbeds."]),
    (7, ["nepi.util.proxy"]),
    (8, ["nepi.cli."]),
]


def layer_of(module: str) -> int:
    best = None
    for number, names in LAYERS:
        for name in names:
            if module == name or module == name.rstrip(".") or \
                    (name.endswith(".") and module.startswith(name)):
                if best is None or len(name) > best[1]:
                    best = (number, len(name))
    if best is None:
        raise AssertionError("module %s has no layer: add it to LAYERS" % module)
    return best[0]


def modules():
    found = {}
    for dirpath, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
            if rel.endswith(".__init__"):
                rel = rel[:-len(".__init__")]
            found[rel] = path
    return found


def imports_of(module: str, path: str, known) -> set:
    """nepi modules ``module`` imports, anywhere in the file (resolved to known modules)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [base + "." + alias.name for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("nepi") and name != module:
                targets.add(name)
    # a package's own face (nepi.x) is not a dependency of its modules
    return {t for t in targets if not module.startswith(t + ".")}


GRAPH = None


def graph():
    global GRAPH
    if GRAPH is None:
        found = modules()
        GRAPH = {m: imports_of(m, p, found) for m, p in found.items()}
    return GRAPH


def test_every_module_has_a_layer():
    for module in graph():
        layer_of(module)


def test_no_module_imports_a_higher_layer():
    upward = ["%s (layer %d) imports %s (layer %d)" % (m, layer_of(m), t, layer_of(t))
              for m, targets in sorted(graph().items()) for t in sorted(targets)
              if layer_of(t) > layer_of(m)]
    assert upward == [], "\n".join(upward)


def test_the_experiment_controller_never_reaches_the_rpc_layer():
    core = [m for m in graph() if m.startswith("nepi.core")]
    bad = ["%s imports %s" % (m, t) for m in core for t in graph()[m]
           if t.startswith(("nepi.rpc", "nepi.util.proxy", "nepi.cli", "nepi.testbeds"))]
    assert bad == [], "\n".join(bad)


def test_no_import_cycles():
    g = graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):                     # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert cycles == [], "import circles: %s" % cycles


@pytest.mark.parametrize("module, expected", [("nepi.core.execute", 4),
                                              ("nepi.util.parser._xml", 2),
                                              ("nepi.util.proxy", 7), ("nepi.rpc.server", 5)])
def test_the_layer_map_itself(module, expected):
    assert layer_of(module) == expected
