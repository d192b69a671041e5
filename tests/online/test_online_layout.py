"""Layout rules of fedotl.online: one kernel module, no reaching into other objects' private
state, dependencies limited to numpy / scipy / river (torch only inside from_torch's helpers)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import fedotl.online
from fedotl.online import kernels
from fedotl.online.baselines import PAIO
from fedotl.online.pa import PA, MulticlassPA
from fedotl.online.sources import SourceClassifier

ONLINE = Path(fedotl.online.__file__).resolve().parent
MODULES = sorted(ONLINE.glob("*.py"))
KERNELS = ("pi", "margin_pi", "hedge_beta", "hedge_weights", "pa_tau", "pa_step", "multiclass_pa_step", "batched_pa_step")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_public_names_keep_working():
    assert fedotl.online.margin_pi is kernels.margin_pi
    for name in fedotl.online.__all__:
        assert hasattr(fedotl.online, name)


def test_each_kernel_is_defined_once_in_kernels():
    for path in MODULES:
        defined = {n.name for n in ast.walk(_tree(path)) if isinstance(n, ast.FunctionDef)}
        if path.name == "kernels.py":
            assert set(KERNELS) <= defined
        else:
            assert not defined & set(KERNELS), f"{path.name} redefines {sorted(defined & set(KERNELS))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_private_attribute_of_another_object(path):
    bad = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                bad.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert not bad


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_stay_inside_online_and_its_dependencies(path):
    tree = _tree(path)
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1, f"{path.name}:{node.lineno} imports outside online/"
            continue
        if isinstance(node, ast.ImportFrom):
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            if root == "fedotl":
                assert name.startswith("fedotl.online"), f"{path.name}:{node.lineno} imports {name}"
            elif root == "torch":
                assert path.name == "sources.py" and id(node) not in top_level, f"{path.name}:{node.lineno}"
            else:
                assert root in sys.stdlib_module_names or root in ("numpy", "scipy", "river"), (
                    f"{path.name}:{node.lineno} imports {name}"
                )


# ---------------------------------------------------------------------- the public methods
def test_predict_learn_encoded_is_the_prequential_step():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).tolist()  # bool labels: codes are +1 / -1
    a, b = PA(), PA()
    codes = [a.predict_learn_encoded(x, yi) for x, yi in zip(X, y)]
    assert all(e == (1 if yi else -1) for (_, e), yi in zip(codes, y))
    assert [p != e for p, e in codes] == b.prequential(X, y).tolist()
    assert np.array_equal(a.weights_, b.weights_)


def test_start_from_sets_weights_and_feature_names():
    src = SourceClassifier([[1.0, 0.0], [0.0, 2.0]], [0.5, 0.0], classes=("a", "b"), features=("u", "v"))
    m = MulticlassPA(fit_intercept=False, classes=("b", "a"))
    W, b = src.aligned(m.classes_, 0.0)
    m.start_from(W, b, src.feature_names)
    assert m.feature_names_in_ == ["u", "v"]
    assert m.weights_.tolist() == [[0.0, 2.0], [1.0, 0.0]]
    assert m.intercept_.tolist() == [0.0, 0.5]
    assert m.predict_one({"u": 1.0, "v": 0.1}) == "a"  # 1.5 vs 0.2: the fixed offset counts
    p = PAIO(src, fit_intercept=False, classes=("b",))
    assert p.weights_.tolist() == m.weights_.tolist() and p.intercept_.tolist() == m.intercept_.tolist()
