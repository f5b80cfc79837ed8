"""Raw scores and exact TreeSHAP contributions of a LightGBM booster, compiled with numba.

LightGBM's `pred_contrib` and `shap.TreeExplainer` run the original TreeSHAP recursion, which
re-extends and unwinds the path at every node: O(leaves x depth^2) per tree with a large constant.
Here each leaf is handled on its own. For a leaf with value v whose path splits on the distinct
features P (d of them), let z_j be the share of training rows that follow the path's splits on
feature j (product of child/parent counts) and A the features whose splits the row satisfies. The
path-dependent Shapley value of feature i from this leaf (Lundberg et al. 2020, eq. for one path) is

    phi_i = v (1[i in A] - z_i) * sum_{S subset of A minus i} w(|S|) prod_{j in P minus S minus i} z_j

with w(s) = s! (d - 1 - s)! / d!. The sum is a weighted sum of the coefficients of the polynomial
prod_{j in A minus i} (t + z_j) times the z of the features outside A, so one product polynomial per
leaf and one synthetic division per feature in A give every phi_i. For leaves with at most
`TABLE_DEPTH` distinct features the weighted sums are tabulated once per subset of the path's
features (2^d numbers), so a row costs O(d) per leaf instead of O(d^2). The same numbers as
LightGBM's `pred_contrib` (checked in the tests), several times faster, rows in parallel.

Decisions follow LightGBM's own rules (`Tree::NumericalDecision` / `CategoricalDecision`):
missing values take the default side when the split learned one, NaN counts as zero otherwise,
categories (cast to int, as LightGBM does) are looked up in the split's bitset, and NaN or
negative categories go right.

Raw scores of a batch take a second route when every tree has at most 64 leaves (QuickScorer,
Lucchese et al. 2015, with the rows of a block in the inner loop): a 64-bit word per tree and
row holds the leaves still reachable, numbered left to right; every split the row fails (goes
right at) clears the leaves of its left subtree, and the exit leaf is the lowest bit left. All
splits on a feature are visited for a block of rows with no branch, so the compiler runs the
block's rows in SIMD lanes (about 3x the walk on the demo champion). Categorical splits look
the category up in the split's bitset, with no branch either; zero-as-missing splits are decided
row by row with LightGBM's rules. The leaf values are summed in the trees' order, so both routes
give LightGBM's number to the bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numba
import numpy as np

_NUMERIC, _CATEGORICAL = 0, 1
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_ZERO = 1e-35  # LightGBM's kZeroThreshold
BLOCK = 256  # rows per block in the contributions kernel
WALK_BLOCK = 64  # rows per block in the raw-score kernel
TABLE_ROWS = 8  # smaller blocks (a single request) skip the tables: cold tables cost more
_CORES = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
TABLE_DEPTH = 14  # leaves with more distinct path features (rare) are computed row by row
VECTOR_BLOCK = 64  # rows per block in the vectorised raw-score kernel
VECTOR_ROWS = 8  # fewer rows (a request) walk the trees: a block's fixed cost is not worth it
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_DE_BRUIJN = 0x03F79D71B4CB0A89  # the lowest set bit's position: (bit * this) >> 58 -> table


@dataclass(frozen=True)
class CompiledTrees:
    """A booster's trees as flat arrays. Children >= 0 are internal nodes (tree-local index);
    a child < 0 is the leaf ~child. Per leaf, its distinct path features (`unique_*`) and, per
    distinct feature, the path steps that split on it (`step_node`, `step_left`)."""

    n_features: int
    expected_value: float
    tree_node: np.ndarray  # (trees + 1,) offsets into the node arrays
    tree_leaf: np.ndarray  # (trees + 1,) offsets into the leaf arrays
    feature: np.ndarray
    threshold: np.ndarray
    kind: np.ndarray
    default_left: np.ndarray
    missing: np.ndarray
    cat_start: np.ndarray
    cat_len: np.ndarray
    cat_bits: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray
    leaf_unique: np.ndarray  # (leaves + 1,) offsets into the unique arrays
    unique_feature: np.ndarray
    unique_zero: np.ndarray
    unique_step: np.ndarray  # (uniques + 1,) offsets into the step arrays
    step_node: np.ndarray
    step_left: np.ndarray
    weights: np.ndarray  # weights[d, s] = s! (d - 1 - s)! / d!
    leaf_table: np.ndarray  # (leaves + 1,) offsets into `table`; empty range: no table
    table: np.ndarray  # per leaf, H(B) for every subset B of its distinct features (bit m = m-th)
    # The raw-score walk's view, global node indices: per tree its root (a leaf ~l for a
    # single-leaf tree); per node feature << 2 | NaN goes right << 1 | needs the full decision
    # (categorical or zero-as-missing), and both children (kids[2g] left, kids[2g + 1] right).
    walk_root: np.ndarray
    walk_meta: np.ndarray
    walk_kids: np.ndarray
    # The vectorised view (see the module's docstring), empty when a tree has over 64 leaves:
    # the plain numeric splits grouped by feature (`vector_start`, per feature), then by tree;
    # per split its threshold, whether NaN goes right, its tree and its left subtree's leaf
    # bits; the categorical splits and the zero-as-missing ones (`vector_category`,
    # `vector_special`: node indices) with their trees and leaf bits;
    # the leaf values by tree and left-to-right position.
    vector_start: np.ndarray
    vector_threshold: np.ndarray
    vector_nan_right: np.ndarray
    vector_tree: np.ndarray
    vector_left: np.ndarray
    vector_category: np.ndarray
    vector_category_tree: np.ndarray
    vector_category_left: np.ndarray
    vector_special: np.ndarray
    vector_special_tree: np.ndarray
    vector_special_left: np.ndarray
    vector_value: np.ndarray

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> CompiledTrees:
        dump = booster.dump_model()
        if dump["num_tree_per_iteration"] != 1:
            raise ValueError("only single-output boosters (binary or regression) are supported")
        b = _Builder()
        for info in dump["tree_info"]:
            b.add_tree(info["tree_structure"])
        depth = max((len(u) for u in b.leaf_paths), default=0)
        weights = np.zeros((depth + 2, depth + 2))
        for d in range(1, depth + 2):
            for s in range(d):
                weights[d, s] = math.factorial(s) * math.factorial(d - 1 - s) / math.factorial(d)
        unique_feature, unique_zero, unique_step, step_node, step_left = [], [], [0], [], []
        leaf_unique = [0]
        for path in b.leaf_paths:
            for feat, (zero, steps) in path.items():
                unique_feature.append(feat)
                unique_zero.append(zero)
                for node, went_left in steps:
                    step_node.append(node)
                    step_left.append(went_left)
                unique_step.append(len(step_node))
            leaf_unique.append(len(unique_feature))

        def arr(values: list[Any], dtype: str) -> np.ndarray:
            return np.asarray(values, dtype=dtype)

        sizes = np.diff(np.asarray(leaf_unique, dtype="int64"))
        leaf_table = np.zeros(len(sizes) + 1, dtype="int64")
        leaf_table[1:] = np.cumsum(np.where(sizes <= TABLE_DEPTH, 1 << sizes, 0))
        table = np.empty(int(leaf_table[-1]))
        _tabulate(
            arr(leaf_unique, "int64"), arr(unique_zero, "float64"), weights, leaf_table, table
        )

        nodes = {
            "tree_node": arr(b.tree_node, "int64"),
            "tree_leaf": arr(b.tree_leaf, "int64"),
            "feature": arr(b.feature, "int64"),
            "threshold": arr(b.threshold, "float64"),
            "kind": arr(b.kind, "int8"),
            "default_left": arr(b.default_left, "bool"),
            "missing": arr(b.missing, "int8"),
            "left": arr(b.left, "int64"),
            "right": arr(b.right, "int64"),
        }
        root, meta, kids = _walk_view(nodes)
        vector = _vector_view(nodes, arr(b.leaf_value, "float64"))
        return cls(
            n_features=int(dump["max_feature_idx"]) + 1,
            expected_value=float(sum(b.expected)),
            **nodes,
            cat_start=arr(b.cat_start, "int64"),
            cat_len=arr(b.cat_len, "int64"),
            cat_bits=arr(b.cat_bits, "uint32"),
            leaf_value=arr(b.leaf_value, "float64"),
            leaf_unique=arr(leaf_unique, "int64"),
            unique_feature=arr(unique_feature, "int64"),
            unique_zero=arr(unique_zero, "float64"),
            unique_step=arr(unique_step, "int64"),
            step_node=arr(step_node, "int64"),
            step_left=arr(step_left, "bool"),
            weights=weights,
            leaf_table=leaf_table,
            table=table,
            walk_root=root,
            walk_meta=meta,
            walk_kids=kids,
            **vector,
        )

    def _tables(self) -> tuple[np.ndarray, ...]:
        return (
            self.tree_node,
            self.tree_leaf,
            self.feature,
            self.threshold,
            self.kind,
            self.default_left,
            self.missing,
            self.cat_start,
            self.cat_len,
            self.cat_bits,
            self.left,
            self.right,
            self.leaf_value,
        )

    @property
    def vectorised(self) -> bool:
        """Whether batches take the vectorised kernel (every tree has at most 64 leaves)."""
        return len(self.vector_value) > 0

    def raw_score(
        self, x: np.ndarray, *, threads: int = 0, columns: np.ndarray | None = None
    ) -> np.ndarray:
        """Sum of leaf values per row: LightGBM's `predict(raw_score=True)`. With `columns`,
        feature f is column `columns[f]` of a wider `x` (a matrix shared with another model)."""
        if columns is None:
            x = self._check(x, any_order=True)
            columns = np.arange(x.shape[1])
        else:
            x = np.asarray(x, dtype="float64")
            columns = np.asarray(columns, dtype="int64")
            if (
                x.ndim != 2
                or columns.shape != (self.n_features,)
                or (len(columns) and not 0 <= columns.min() <= columns.max() < x.shape[1])
            ):
                raise ValueError(
                    f"expected {self.n_features} column indices into rows of shape {x.shape}"
                )
            if not x.flags.f_contiguous:
                x = np.ascontiguousarray(x)
        if self.vectorised and len(x) >= VECTOR_ROWS:
            return self._raw_vector(x, threads, columns)
        if not np.array_equal(columns, np.arange(x.shape[1])):
            x = x[:, columns]
        return self._raw_walk(np.ascontiguousarray(x), threads)

    def _raw_vector(
        self, x: np.ndarray, threads: int, columns: np.ndarray | None = None
    ) -> np.ndarray:
        out = np.empty(len(x))
        if columns is None:
            columns = np.arange(x.shape[1])
        with _threads(threads):
            _vector_kernel(
                x, columns, out, self.vector_start, self.vector_threshold, self.vector_nan_right,
                self.vector_tree, self.vector_left, self.vector_category,
                self.vector_category_tree, self.vector_category_left, self.vector_special,
                self.vector_special_tree,
                self.vector_special_left, self.vector_value, _LOWEST_BIT, self.feature,
                self.threshold, self.kind, self.default_left, self.missing, self.cat_start,
                self.cat_len, self.cat_bits,
            )  # fmt: skip
        return out

    def _raw_walk(self, x: np.ndarray, threads: int) -> np.ndarray:
        out = np.empty(len(x))
        with _threads(threads):
            _raw_kernel(
                x, out, self.walk_root, self.walk_meta, self.threshold, self.walk_kids,
                self.leaf_value, self.feature, self.kind, self.default_left, self.missing,
                self.cat_start, self.cat_len, self.cat_bits,
            )  # fmt: skip
        return out

    def contributions(self, x: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """Exact TreeSHAP per feature, plus the expected value in the last column:
        LightGBM's `predict(pred_contrib=True)`."""
        x = self._check(x)
        out = np.zeros((len(x), self.n_features + 1))
        out[:, -1] = self.expected_value
        if len(x):
            with _threads(threads):
                _shap_kernel(
                    x,
                    out,
                    *self._tables(),
                    self.leaf_unique,
                    self.unique_feature,
                    self.unique_zero,
                    self.unique_step,
                    self.step_node,
                    self.step_left,
                    self.weights,
                    self.leaf_table,
                    self.table,
                )
        return out

    def _check(self, x: np.ndarray, *, any_order: bool = False) -> np.ndarray:
        """Rows as float64, row-major (column-major kept with `any_order`: the vectorised
        kernel reads either, and `ModelBundle.matrix` builds batches column-major)."""
        x = np.asarray(x, dtype="float64")
        if not (any_order and x.flags.f_contiguous):
            x = np.ascontiguousarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        return x


class _Builder:
    """Walks `dump_model()` trees into flat lists."""

    def __init__(self) -> None:
        self.tree_node, self.tree_leaf = [0], [0]
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.kind: list[int] = []
        self.default_left: list[bool] = []
        self.missing: list[int] = []
        self.cat_start: list[int] = []
        self.cat_len: list[int] = []
        self.cat_bits: list[int] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.leaf_value: list[float] = []
        self.leaf_paths: list[dict[int, tuple[float, list[tuple[int, bool]]]]] = []
        self.expected: list[float] = []

    def add_tree(self, root: dict[str, Any]) -> None:
        node_base, leaf_base = len(self.feature), len(self.leaf_value)
        total = float(root.get("internal_count", root.get("leaf_count", 1)) or 1)
        leaves: list[tuple[int, float, float, dict[int, tuple[float, list[tuple[int, bool]]]]]] = []

        def visit(
            node: dict[str, Any], path: dict[int, tuple[float, list[tuple[int, bool]]]]
        ) -> int:
            if "split_feature" not in node:
                index = int(node.get("leaf_index", 0))
                count = float(node.get("leaf_count", total))
                leaves.append((index, float(node["leaf_value"]), count, path))
                return ~index
            k = len(self.feature) - node_base
            self._split(node)
            count = float(node["internal_count"])
            children = []
            for side, went_left in (("left_child", True), ("right_child", False)):
                child = node[side]
                share = float(child.get("internal_count", child.get("leaf_count", 0))) / count
                feat = int(node["split_feature"])
                zero, steps = path.get(feat, (1.0, []))
                extended = {**path, feat: (zero * share, [*steps, (k, went_left)])}
                children.append(visit(child, extended))
            self.left[node_base + k], self.right[node_base + k] = children
            return k

        visit(root, {})
        leaves.sort(key=lambda leaf: leaf[0])
        if [leaf[0] for leaf in leaves] != list(range(len(leaves))):
            raise ValueError("leaf indices of a tree are not 0..n-1")
        for _, value, _count, path in leaves:
            self.leaf_value.append(value)
            self.leaf_paths.append(path)
        self.expected.append(sum(value * count / total for _, value, count, _ in leaves))
        self.tree_node.append(len(self.feature))
        self.tree_leaf.append(leaf_base + len(leaves))

    def _split(self, node: dict[str, Any]) -> None:
        self.feature.append(int(node["split_feature"]))
        self.default_left.append(bool(node.get("default_left", False)))
        self.missing.append(_MISSING[str(node.get("missing_type", "None"))])
        self.left.append(0)
        self.right.append(0)
        if node["decision_type"] == "==":
            categories = [int(c) for c in str(node["threshold"]).split("||")]
            words = np.zeros(max(categories) // 32 + 1, dtype="uint64")
            for c in categories:
                words[c // 32] |= np.uint64(1) << np.uint64(c % 32)
            self.kind.append(_CATEGORICAL)
            self.threshold.append(0.0)
            self.cat_start.append(len(self.cat_bits))
            self.cat_len.append(len(words))
            self.cat_bits.extend(int(w) for w in words)
        elif node["decision_type"] == "<=":
            self.kind.append(_NUMERIC)
            self.threshold.append(float(node["threshold"]))
            self.cat_start.append(0)
            self.cat_len.append(0)
        else:
            raise ValueError(f"unsupported split decision {node['decision_type']!r}")


def _walk_view(nodes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Roots, packed node decisions and children for `_raw` (see `CompiledTrees.walk_*`);
    `nodes` holds the node arrays of `CompiledTrees` by field name."""
    tree_node, tree_leaf, feature = nodes["tree_node"], nodes["tree_leaf"], nodes["feature"]
    kind, missing, left, right = nodes["kind"], nodes["missing"], nodes["left"], nodes["right"]
    nan_right = _nan_goes_right(nodes)
    full = (kind == _CATEGORICAL) | (missing == _MISSING["Zero"])
    meta = (feature.astype("int32") << 2) | (nan_right.astype("int32") << 1) | full.astype("int32")
    sizes = np.diff(tree_node)
    node_base = np.repeat(tree_node[:-1], sizes)  # each node's tree, as offsets
    leaf_base = np.repeat(tree_leaf[:-1], sizes)
    kids = np.empty(2 * len(feature), dtype="int32")
    for side, child in enumerate((left, right)):  # tree-local index, or ~leaf
        kids[side::2] = np.where(child >= 0, node_base + child, ~(leaf_base + ~child))
    root = np.where(sizes > 0, tree_node[:-1], ~tree_leaf[:-1]).astype("int32")
    return root, meta, kids


def _nan_goes_right(nodes: dict[str, np.ndarray]) -> np.ndarray:
    """Per split: a NaN is 0.0 to a split without missing values, and takes the learned side
    otherwise (zero-as-missing and categorical splits decide in full elsewhere)."""
    threshold, missing = nodes["threshold"], nodes["missing"]
    return np.where(missing == _MISSING["None"], ~(threshold >= 0.0), ~nodes["default_left"])


def _vector_view(nodes: dict[str, np.ndarray], leaf_value: np.ndarray) -> dict[str, np.ndarray]:
    """The `vector_*` fields of `CompiledTrees` (empty when a tree has more than 64 leaves)."""
    tree_node, tree_leaf, feature = nodes["tree_node"], nodes["tree_leaf"], nodes["feature"]
    threshold, kind, missing = nodes["threshold"], nodes["kind"], nodes["missing"]
    left, right = nodes["left"], nodes["right"]
    trees = len(tree_node) - 1
    if trees == 0 or np.diff(tree_leaf).max() > 64:
        empty = np.zeros(0, dtype="int64")
        return {
            "vector_start": empty, "vector_threshold": np.zeros(0), "vector_nan_right": empty,
            "vector_tree": empty, "vector_left": empty, "vector_category": empty,
            "vector_category_tree": empty, "vector_category_left": empty, "vector_special": empty,
            "vector_special_tree": empty, "vector_special_left": empty,
            "vector_value": np.zeros((0, 64)),
        }  # fmt: skip
    left_bits = np.zeros(len(feature), dtype="uint64")
    node_tree = np.repeat(np.arange(trees, dtype="int32"), np.diff(tree_node))
    value = np.zeros((trees, 64))
    for t in range(trees):
        base, leaf_base = int(tree_node[t]), int(tree_leaf[t])
        if tree_node[t + 1] == base:  # a single leaf: the word's lowest bit
            value[t, 0] = leaf_value[leaf_base]
            continue
        order: list[int] = []  # the tree's leaves, left to right
        _in_order(0, base, leaf_base, left, right, order, left_bits)
        value[t, : len(order)] = leaf_value[order]
    nan_right = _nan_goes_right(nodes)
    plain = (kind == _NUMERIC) & (missing != _MISSING["Zero"])
    split = np.flatnonzero(plain)
    split = split[np.lexsort((node_tree[split], feature[split]))]
    n_features = int(feature.max()) + 1 if len(feature) else 0
    category = np.flatnonzero(kind == _CATEGORICAL)
    special = np.flatnonzero(~plain & (kind != _CATEGORICAL))  # zero-as-missing numeric splits
    return {
        "vector_start": np.searchsorted(feature[split], np.arange(n_features + 1)),
        "vector_threshold": threshold[split],
        "vector_nan_right": nan_right[split].astype("uint64"),
        "vector_tree": node_tree[split],
        "vector_left": left_bits[split],
        "vector_category": category.astype("int64"),
        "vector_category_tree": node_tree[category],
        "vector_category_left": left_bits[category],
        "vector_special": special.astype("int64"),
        "vector_special_tree": node_tree[special],
        "vector_special_left": left_bits[special],
        "vector_value": value,
    }


def _in_order(
    k: int,
    base: int,
    leaf_base: int,
    left: np.ndarray,
    right: np.ndarray,
    order: list[int],
    left_bits: np.ndarray,
) -> None:
    """Appends node k's leaves to `order` left to right, noting each node's left-subtree bits."""
    first = len(order)
    for side, child in enumerate((int(left[base + k]), int(right[base + k]))):
        if child >= 0:
            _in_order(child, base, leaf_base, left, right, order, left_bits)
        else:
            order.append(leaf_base + ~child)
        if side == 0:
            left_bits[base + k] = np.uint64(((1 << (len(order) - first)) - 1) << first)


_LOWEST_BIT = np.zeros(64, dtype="int64")
for _i in range(64):
    _LOWEST_BIT[((1 << _i) * _DE_BRUIJN % (1 << 64)) >> 58] = _i


@contextmanager
def _threads(threads: int) -> Iterator[None]:
    """`threads` as in LightGBM: 0 means every core, n > 0 that many. numba's thread count
    belongs to the calling thread, so concurrent requests of the service do not disturb each other."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, _CORES) or _CORES)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _decide(
    v: float,
    k: int,
    threshold: np.ndarray,
    kind: np.ndarray,
    default_left: np.ndarray,
    missing: np.ndarray,
    cat_start: np.ndarray,
    cat_len: np.ndarray,
    cat_bits: np.ndarray,
) -> bool:
    """Whether value v goes left at split k, by LightGBM's rules."""
    if kind[k] == _CATEGORICAL:
        if np.isnan(v) or v <= -1.0:  # LightGBM casts to int first: -0.5 is category 0
            return False
        c = int(v)
        word = c // 32
        if word >= cat_len[k]:
            return False
        return (cat_bits[cat_start[k] + word] >> np.uint32(c % 32)) & np.uint32(1) == np.uint32(1)
    m = missing[k]
    if np.isnan(v) and m != 2:
        v = 0.0
    if (m == 1 and -_ZERO <= v <= _ZERO) or (m == 2 and np.isnan(v)):
        return default_left[k]
    return v <= threshold[k]


_decide_jit = numba.njit(inline="always")(_decide)


def _raw(
    x: np.ndarray,
    out: np.ndarray,
    root: np.ndarray,
    meta: np.ndarray,
    threshold: np.ndarray,
    kids: np.ndarray,
    leaf_value: np.ndarray,
    feature: np.ndarray,
    kind: np.ndarray,
    default_left: np.ndarray,
    missing: np.ndarray,
    cat_start: np.ndarray,
    cat_len: np.ndarray,
    cat_bits: np.ndarray,
) -> None:
    """Rows in blocks of `WALK_BLOCK`, each tree walked for the whole block one level at a time
    (the rows' walks overlap in the CPU) with a branch-free numeric decision; the sum runs over
    the trees in order, as LightGBM's does, so the result is the same to the bit."""
    n = x.shape[0]
    for b in numba.prange((n + WALK_BLOCK - 1) // WALK_BLOCK):
        lo = b * WALK_BLOCK
        m = min(n, lo + WALK_BLOCK) - lo
        total = np.zeros(WALK_BLOCK)
        at = np.empty(WALK_BLOCK, dtype=np.int32)
        for t in range(root.shape[0]):
            at[:m] = root[t]
            walking = root[t] >= 0
            while walking:
                walking = False
                for i in range(m):
                    g = at[i]
                    if g >= 0:
                        info = meta[g]
                        v = x[lo + i, info >> 2]
                        right = np.int32(v > threshold[g]) | (np.int32(v != v) & ((info >> 1) & 1))
                        if info & 1:
                            go_left = _decide_jit(
                                v, g, threshold, kind, default_left, missing, cat_start,
                                cat_len, cat_bits,
                            )  # fmt: skip
                            right = np.int32(0) if go_left else np.int32(1)
                        g = kids[2 * g + right]
                        at[i] = g
                        walking |= g >= 0
            for i in range(m):
                total[i] += leaf_value[~at[i]]
        out[lo : lo + m] = total[:m]


def _vector(
    x: np.ndarray,
    columns: np.ndarray,
    out: np.ndarray,
    start: np.ndarray,
    threshold_: np.ndarray,
    nan_right: np.ndarray,
    tree: np.ndarray,
    left_bits: np.ndarray,
    category: np.ndarray,
    category_tree: np.ndarray,
    category_left: np.ndarray,
    special: np.ndarray,
    special_tree: np.ndarray,
    special_left: np.ndarray,
    value: np.ndarray,
    lowest_bit: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    kind: np.ndarray,
    default_left: np.ndarray,
    missing: np.ndarray,
    cat_start: np.ndarray,
    cat_len: np.ndarray,
    cat_bits: np.ndarray,
) -> None:
    """QuickScorer over blocks of `VECTOR_BLOCK` rows (see the module's docstring). A split the
    row fails clears its left subtree's bits: word &= ~(left_bits & -fails), with no branch."""
    n = x.shape[0]
    width = start.shape[0] - 1  # features that plain splits use (a prefix of the row)
    trees = value.shape[0]
    zero = np.uint64(0)
    for b in numba.prange((n + VECTOR_BLOCK - 1) // VECTOR_BLOCK):
        lo = b * VECTOR_BLOCK
        m = min(n, lo + VECTOR_BLOCK) - lo
        column = np.empty((max(width, 1), VECTOR_BLOCK))  # the block feature-major
        for f in range(width):
            c = columns[f]
            for j in range(m):
                column[f, j] = x[lo + j, c]
        words = np.empty((trees, VECTOR_BLOCK), dtype=np.uint64)
        words[:] = _ALL
        for f in range(width):
            for k in range(start[f], start[f + 1]):
                thr = threshold_[k]
                t = tree[k]
                bits = left_bits[k]
                nr = nan_right[k]
                for j in range(m):
                    v = column[f, j]
                    fails = np.uint64(v > thr) | (np.uint64(v != v) & nr)
                    words[t, j] &= ~(bits & (zero - fails))
        for s in range(category.shape[0]):  # the bitset lookup, with no branch either
            g = category[s]
            f = feature[g]
            t = category_tree[s]
            bits = category_left[s]
            first = cat_start[g]
            limit = 32.0 * cat_len[g]
            for j in range(m):
                v = column[f, j]
                inside = (v > -1.0) & (v < limit)  # False for NaN: NaN goes right
                c = np.int64(v if inside else 0.0)
                hit = np.uint64((cat_bits[first + (c >> 5)] >> np.uint32(c & 31)) & np.uint32(1))
                fails = np.uint64(1) - (hit & np.uint64(inside))
                words[t, j] &= ~(bits & (zero - fails))
        for s in range(special.shape[0]):
            g = special[s]
            for j in range(m):
                go_left = _decide_jit(
                    column[feature[g], j], g, threshold, kind, default_left, missing,
                    cat_start, cat_len, cat_bits,
                )  # fmt: skip
                if not go_left:
                    words[special_tree[s], j] &= ~special_left[s]
        total = np.zeros(VECTOR_BLOCK)
        for t in range(trees):  # in the trees' order, as LightGBM sums
            for j in range(m):
                w = words[t, j]
                lowest = w & (~w + np.uint64(1))
                total[j] += value[t, lowest_bit[(lowest * np.uint64(_DE_BRUIJN)) >> np.uint64(58)]]
        out[lo : lo + m] = total[:m]


def _shap(
    x: np.ndarray,
    out: np.ndarray,
    tree_node: np.ndarray,
    tree_leaf: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    kind: np.ndarray,
    default_left: np.ndarray,
    missing: np.ndarray,
    cat_start: np.ndarray,
    cat_len: np.ndarray,
    cat_bits: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    leaf_value: np.ndarray,
    leaf_unique: np.ndarray,
    unique_feature: np.ndarray,
    unique_zero: np.ndarray,
    unique_step: np.ndarray,
    step_node: np.ndarray,
    step_left: np.ndarray,
    weights: np.ndarray,
    leaf_table: np.ndarray,
    table: np.ndarray,
) -> None:
    """Rows go in blocks of BLOCK: each leaf's structure and table are read once per block, and
    the inner loops run over the block's rows."""
    trees = len(tree_node) - 1
    widest = 1
    for t in range(trees):
        widest = max(widest, tree_node[t + 1] - tree_node[t])
    depth = weights.shape[0]
    rows = x.shape[0]
    for block in numba.prange((rows + BLOCK - 1) // BLOCK):
        r0 = block * BLOCK
        b = min(BLOCK, rows - r0)
        went_left = np.empty((widest, BLOCK), dtype=np.bool_)
        phi = np.zeros((out.shape[1] - 1, BLOCK))  # feature-major: the inner loops run along rows
        mask = np.empty(BLOCK, dtype=np.int64)
        outside = np.empty(BLOCK)
        agree = np.empty(depth, dtype=np.int64)
        poly = np.empty(depth + 1)
        quot = np.empty(depth + 1)
        for t in range(trees):
            base = tree_node[t]
            for k in range(tree_node[t + 1] - base):
                for j in range(b):
                    went_left[k, j] = _decide_jit(
                        x[r0 + j, feature[base + k]], base + k, threshold, kind, default_left,
                        missing, cat_start, cat_len, cat_bits,
                    )  # fmt: skip
            for leaf in range(tree_leaf[t], tree_leaf[t + 1]):
                first, last = leaf_unique[leaf], leaf_unique[leaf + 1]
                d = last - first
                if d == 0:
                    continue
                v = leaf_value[leaf]
                at = leaf_table[leaf]
                tabulated = leaf_table[leaf + 1] > at
                if tabulated and b >= TABLE_ROWS:  # O(d) per row
                    for j in range(b):
                        mask[j] = 0
                        outside[j] = 1.0
                    for m in range(d):  # which of the path's features each row follows
                        u = first + m
                        z = unique_zero[u]
                        s0, s1 = unique_step[u], unique_step[u + 1]
                        for j in range(b):
                            follows = True
                            for s in range(s0, s1):
                                follows &= went_left[step_node[s], j] == step_left[s]
                            mask[j] |= np.int64(follows) << m
                            outside[j] *= 1.0 if follows else z
                    for m in range(d):
                        u = first + m
                        col = unique_feature[u]
                        gain = v * (1.0 - unique_zero[u])
                        bit = 1 << m
                        for j in range(b):  # H(A minus i) when followed, H(A) when not: A & ~bit
                            mk = mask[j]
                            scale = gain if mk & bit else -v
                            phi[col, j] += scale * outside[j] * table[at + (mk & ~bit)]
                    continue
                w = weights[d]
                for j in range(b):  # row by row, the table's numbers computed on the spot
                    n = 0
                    out_z = 1.0
                    for u in range(first, last):
                        follows = True
                        for s in range(unique_step[u], unique_step[u + 1]):
                            follows &= went_left[step_node[s], j] == step_left[s]
                        if follows:
                            agree[n] = u
                            n += 1
                        else:
                            out_z *= unique_zero[u]
                    # H(A): the product polynomial of the followed features, left in `poly`
                    h_all = _subset_sum(unique_zero, agree, n, -1, w, poly)
                    if n < d:  # every feature the row does not follow: -v * outside * H(A)
                        share = -v * out_z * h_all
                        m = 0
                        for u in range(first, last):
                            if m < n and agree[m] == u:
                                m += 1
                            else:
                                phi[unique_feature[u], j] += share
                    # A followed feature i: H(A minus i), by dividing (t + z_i) out of H(A)'s
                    # polynomial, O(n). Rebuilding each polynomial as the tables do gives the
                    # batch's numbers bit for bit but costs O(n^2) (a single row 4.4 vs 3.6 ms on
                    # the demo champion); the two agree to ~1e-15 relative (tested).
                    for m in range(n):
                        u = agree[m]
                        z = unique_zero[u]
                        quot[n - 1] = poly[n]
                        for s in range(n - 1, 0, -1):
                            quot[s - 1] = poly[s] - z * quot[s]
                        h = 0.0
                        for s in range(n):
                            h += w[s] * quot[s]
                        phi[unique_feature[u], j] += v * (1.0 - z) * out_z * h
        for f in range(phi.shape[0]):
            for j in range(b):
                out[r0 + j, f] = phi[f, j]


def _subset_sum_py(
    unique_zero: np.ndarray, agree: np.ndarray, n: int, skip: int, w: np.ndarray, poly: np.ndarray
) -> float:
    """H(B) for B = agree[:n] without agree[skip], with the product polynomial of (t + z) left in
    `poly` (built in the same order and with the same operations as `_tabulate_leaves`)."""
    poly[0] = 1.0
    size = 0
    for m in range(n):
        if m == skip:
            continue
        z = unique_zero[agree[m]]
        poly[size + 1] = poly[size]
        for s in range(size, 0, -1):
            poly[s] = poly[s - 1] + z * poly[s]
        poly[0] = z * poly[0]
        size += 1
    h = 0.0
    for s in range(size + 1):
        h += w[s] * poly[s]
    return h


_subset_sum = numba.njit(inline="always")(_subset_sum_py)


def _tabulate_leaves(
    leaf_unique: np.ndarray,
    unique_zero: np.ndarray,
    weights: np.ndarray,
    leaf_table: np.ndarray,
    table: np.ndarray,
) -> None:
    """table[leaf_table[l] + B] = sum_s w(s) e_s(B): the weighted sum over subsets S of B of
    prod_{j in B minus S} z_j, for every subset B of leaf l's distinct features."""
    poly = np.zeros((1 << TABLE_DEPTH, TABLE_DEPTH + 1))
    for leaf in range(len(leaf_unique) - 1):
        at = leaf_table[leaf]
        if leaf_table[leaf + 1] == at:
            continue
        first = leaf_unique[leaf]
        d = leaf_unique[leaf + 1] - first
        w = weights[d]
        poly[0, 0] = 1.0
        table[at] = w[0]
        for mask in range(1, 1 << d):
            top = 0
            while (mask >> (top + 1)) > 0:
                top += 1
            prev = mask ^ (1 << top)
            n = 0
            for m in range(top):
                n += (prev >> m) & 1
            z = unique_zero[first + top]
            poly[mask, n + 1] = poly[prev, n]
            for s in range(n, 0, -1):
                poly[mask, s] = poly[prev, s - 1] + z * poly[prev, s]
            poly[mask, 0] = z * poly[prev, 0]
            h = 0.0
            for s in range(n + 2):
                h += w[s] * poly[mask, s]
            table[at + mask] = h


_tabulate: Any = numba.njit(cache=True)(_tabulate_leaves)

# One parallel kernel each (a serial twin compiled from the same function would share its cache
# entry, and numba's serial code for these loops is several times slower than the parfor's).
_raw_kernel: Any = numba.njit(cache=True, nogil=True, parallel=True)(_raw)
_vector_kernel: Any = numba.njit(cache=True, nogil=True, parallel=True)(_vector)
_shap_kernel: Any = numba.njit(cache=True, nogil=True, parallel=True)(_shap)
