"""Guards the import rules between the runner's layers: the engine (src/*.py, src/schema/),
the method packages (src/<method>/), models/, datasets/, procedures/ and main.py.

The rules live in the docstring of src/__init__.py. The checker reads every file with
`ast` (imports inside functions and relative imports included) and imports nothing of
the project, so it runs without TensorFlow.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("src", "procedures", "models", "datasets")
TENSORFLOW = ("tensorflow", "keras", "tf_keras")
TOOLKIT = ("procedures._upstream", "procedures._inputs")  # what a procedure may import of procedures/


# --- reading the tree ----------------------------------------------------------------

def project_files(root: Path = ROOT) -> list[Path]:
    """Every .py file of src/, procedures/, models/, datasets/, and main.py."""
    files = [path for folder in FOLDERS for path in sorted((root / folder).rglob("*.py"))
             if "__pycache__" not in path.parts]
    if (root / "main.py").exists():
        files.append(root / "main.py")
    return files


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name of a file: src/hns/model.py -> src.hns.model, src/schema/__init__.py -> src.schema."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(module: str, root: Path = ROOT) -> Path | None:
    """The file of a project module, or None when the name is not a file of the tree."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """The dotted names a file imports, anywhere in it (lazy imports in functions too).

    `from X import n` counts as importing X.n when X.n is a project module, else X;
    relative imports are resolved against the file's package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if module_path(submodule, root) else source)
    found.discard("__future__")
    return found


def layer_of(module: str, root: Path = ROOT) -> str | None:
    """engine, schema, method, models, datasets, procedures or main; None outside the project."""
    parts = module.split(".")
    top = parts[0]
    if top in ("models", "datasets", "procedures", "main"):
        return top
    if top != "src":
        return None
    if len(parts) == 1:
        return "engine"
    if parts[1] == "schema":
        return "schema"
    if len(parts) > 2 or (root / "src" / parts[1]).is_dir():
        return "method"
    return "engine"


def is_tensorflow(module: str) -> bool:
    return module.split(".")[0] in TENSORFLOW


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _imports_by_layer(root: Path, *layers: str):
    """(file, its module name, its imports) for every file in one of `layers`."""
    for path in project_files(root):
        module = module_name(path, root)
        if layer_of(module, root) in layers:
            yield path, module, imports_of(path, root)


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# --- the rules -----------------------------------------------------------------------

def engine_violations(root: Path = ROOT) -> list[str]:
    """The engine (src/*.py, src/schema/) imports no method package, models, datasets,
    procedures or main."""
    banned = ("method", "models", "datasets", "procedures", "main")
    return sorted(f"{_rel(path, root)} imports {name}"
                  for path, _, names in _imports_by_layer(root, "engine", "schema")
                  for name in names if layer_of(name, root) in banned)


def method_violations(root: Path = ROOT) -> list[str]:
    """A method package imports the engine, models and src.schema; never another method
    package, datasets, procedures or main."""
    violations = []
    for path, module, names in _imports_by_layer(root, "method"):
        own = ".".join(module.split(".")[:2])
        for name in names:
            layer = layer_of(name, root)
            if layer in ("datasets", "procedures", "main") or (layer == "method" and not _inside(name, own)):
                violations.append(f"{_rel(path, root)} imports {name}")
    return sorted(violations)


def tensorflow_free_violations(root: Path = ROOT) -> list[str]:
    """src/schema/ and src/cli.py import no TensorFlow or Keras, directly or through any
    project module they import (a module's parent packages run on import, so they count)."""
    def reached(name: str) -> list[str]:
        """name and its parent packages that are project files, parents first."""
        parts = name.split(".")
        prefixes = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
        return [prefix for prefix in prefixes if layer_of(prefix, root) and module_path(prefix, root)]

    violations = []
    for path in project_files(root):
        start = module_name(path, root)
        if not (layer_of(start, root) == "schema" or start == "src.cli"):
            continue
        chains = {module: [] for module in reached(start)}  # module -> the modules leading to it
        queue = list(chains)
        seen_tf: set[str] = set()
        while queue:
            module = queue.pop(0)
            for name in sorted(imports_of(module_path(module, root), root)):
                if is_tensorflow(name):
                    top = name.split(".")[0]
                    if top not in seen_tf:
                        seen_tf.add(top)
                        via = chains[module] + ([module] if module != start else [])
                        violations.append(f"{_rel(path, root)} imports {top}"
                                          + (f" (through {' -> '.join(via)})" if via else ""))
                for nxt in reached(name):
                    if nxt not in chains:
                        chains[nxt] = chains[module] + ([module] if module != start else [])
                        queue.append(nxt)
    return sorted(violations)


def leaf_package_violations(root: Path = ROOT) -> list[str]:
    """models/ and datasets/ import nothing of the project but src.errors and the TF-free
    src.schema (whose choice lists they implement), and their own package."""
    violations = []
    for path, module, names in _imports_by_layer(root, "models", "datasets"):
        own = module.split(".")[0]
        for name in names:
            if layer_of(name, root) and not _inside(name, own) and name != "src.errors" \
                    and not _inside(name, "src.schema"):
                violations.append(f"{_rel(path, root)} imports {name}")
    return sorted(violations)


def procedure_violations(root: Path = ROOT) -> list[str]:
    """A procedure module imports no other procedure module, nor the procedures package
    by name, except the toolkit (procedures._upstream, procedures._inputs)."""
    return sorted(f"{_rel(path, root)} imports {name}"
                  for path, module, names in _imports_by_layer(root, "procedures") if module not in TOOLKIT
                  for name in names if layer_of(name, root) == "procedures" and name not in TOOLKIT)


def upstream_violations(root: Path = ROOT) -> list[str]:
    """The toolkit imports no procedure module statically (it looks them up by name), only
    its own other half."""
    return sorted(f"{_rel(path, root)} imports {name}"
                  for path, module, names in _imports_by_layer(root, "procedures") if module in TOOLKIT
                  for name in names if layer_of(name, root) == "procedures" and name not in TOOLKIT)


def entry_point_violations(root: Path = ROOT) -> list[str]:
    """Nothing in src/, models/, datasets/ or procedures/ imports main; nothing in src/,
    models/ or datasets/ imports procedures."""
    violations = []
    for path, _, names in _imports_by_layer(root, "engine", "schema", "method", "models", "datasets", "procedures"):
        in_procedures = _rel(path, root).startswith("procedures/")
        for name in names:
            layer = layer_of(name, root)
            if layer == "main" or (layer == "procedures" and not in_procedures):
                violations.append(f"{_rel(path, root)} imports {name}")
    return sorted(violations)


RULES = [engine_violations, method_violations, tensorflow_free_violations, leaf_package_violations,
         procedure_violations, upstream_violations, entry_point_violations]


# --- the tests -----------------------------------------------------------------------

def test_checker_sees_the_tree():
    modules = {module_name(path) for path in project_files()}
    assert {"src", "src.fit", "src.cli", "src.schema", "src.errors", "models", "datasets",
            "procedures._upstream", "main"} <= modules
    assert {layer_of(module) for module in modules} >= {"engine", "schema", "method", "models",
                                                          "datasets", "procedures", "main"}
    assert "src.schema.core" in imports_of(ROOT / "src" / "schema" / "__init__.py")


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_rule_holds(rule):
    assert rule() == []


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


BROKEN_TREE = {
    "main.py": "from src import cli\n",
    "src/__init__.py": "",
    "src/errors.py": "",
    "src/cli.py": "from src.errors import ConfigError\n",
    "src/runstore.py": "import json\n",
    "src/fit.py": "import tensorflow as tf\nfrom src import runstore\nimport models\n",
    "src/schema/__init__.py": "from dataclasses import dataclass\n",
    "src/schema/core.py": "from src.errors import ConfigError\nimport tensorflow\n",
    "src/kd/__init__.py": "from . import loss\n",
    "src/kd/loss.py": "import models\nfrom src import fit\nfrom src.schema import core\nfrom ..hns.model import HnS\n",
    "src/hns/__init__.py": "",
    "src/hns/model.py": "import keras\n",
    "models/__init__.py": "from . import lenet\nfrom src.errors import ConfigError\n",
    "models/lenet.py": "from ._blocks import x\n\ndef build():\n    from src import fit\n",
    "models/_blocks.py": "",
    "datasets/__init__.py": "from .base import Dataset\n",
    "datasets/base.py": "from src.errors import ConfigError\n",
    "procedures/__init__.py": "",
    "procedures/_upstream.py": "import importlib\nimport datasets\nimport models\nimport procedures.train\n",
    "procedures/train.py": "from procedures import _upstream\nfrom src.fit import fit\n",
    "procedures/distill.py": "from procedures._upstream import ensure\nfrom src.kd import loss\n\n"
                             "def run():\n    from . import train\n",
    "procedures/report.py": "import main\n",
}

BROKEN_RULES = {
    engine_violations: "src/fit.py imports models",
    method_violations: "src/kd/loss.py imports src.hns.model",
    tensorflow_free_violations: "src/schema/core.py imports tensorflow",
    leaf_package_violations: "models/lenet.py imports src.fit",
    procedure_violations: "procedures/distill.py imports procedures.train",
    upstream_violations: "procedures/_upstream.py imports procedures.train",
    entry_point_violations: "procedures/report.py imports main",
}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_rule_catches_a_broken_tree(rule, tmp_path):
    root = write(tmp_path, BROKEN_TREE)
    assert rule(root) == [BROKEN_RULES[rule]]


def test_tensorflow_is_found_through_project_imports(tmp_path):
    root = write(tmp_path, {
        "src/__init__.py": "",
        "src/runtime.py": "import tensorflow as tf\n",
        "src/cli.py": "def main():\n    from src.runtime import seed_everything\n",
        "src/schema/__init__.py": "from .core import Config\n",
        "src/schema/core.py": "from src.errors import ConfigError\n",
        "src/errors.py": "from keras import ops\n",
    })
    assert tensorflow_free_violations(root) == [
        "src/cli.py imports tensorflow (through src.runtime)",
        "src/schema/__init__.py imports keras (through src.schema.core -> src.errors)",
        "src/schema/core.py imports keras (through src.errors)",
    ]
