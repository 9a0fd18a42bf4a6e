"""Which Prometheus series the code exports, and which ones a PromQL query reads.

``exported_series(folders)`` reads the source (AST, nothing imported) for prometheus_client
metrics — ``Counter/Gauge/Histogram/Summary/Info/Enum(name, doc, labelnames)`` and the
``*MetricFamily(name, doc, labels=...)`` of custom collectors — and returns the series
names Prometheus sees with their label names, following prometheus_client's naming
(a Counter ``orders`` is exposed as ``orders_total``; a Histogram adds ``_bucket`` with
``le``, ``_sum``, ``_count``).

``selectors(expr)`` lists ``(metric, matcher labels)`` of a PromQL expression and
``grouping_labels(expr)`` the labels of ``by``/``without``/``on``/``ignoring`` clauses,
after Grafana's variables are replaced.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

SUFFIXES = {
    "Counter": ("_total", "_created"),
    "CounterMetricFamily": ("_total",),
    "Gauge": ("",), "GaugeMetricFamily": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count"),
    "Summary": ("", "_sum", "_count", "_created"),
    "SummaryMetricFamily": ("", "_sum", "_count"),
    "Info": ("_info",), "InfoMetricFamily": ("_info",),
    "Enum": ("",), "StateSetMetricFamily": ("",),
}
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint",
                 "__name__"}
"""Labels Prometheus adds to every scraped series (Prometheus Operator target labels)."""


def _literal_strings(node: ast.expr | None) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    return None


def exported_series(folders: Iterable[Path]) -> dict[str, set[str]]:
    """``{series name: label names}`` of every metric defined in the Python files."""
    series: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                kind = func.id if isinstance(func, ast.Name) else (
                    func.attr if isinstance(func, ast.Attribute) else None)
                if kind not in SUFFIXES or not node.args:
                    continue
                first = node.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue
                labels_node = node.args[2] if len(node.args) > 2 else next(
                    (k.value for k in node.keywords if k.arg in ("labelnames", "labels")), None)
                labels = set(_literal_strings(labels_node) or [])
                base = first.value
                if kind.startswith("Counter") and base.endswith("_total"):
                    base = base[: -len("_total")]
                for suffix in SUFFIXES[kind]:
                    extra = {"le"} if suffix == "_bucket" else set()
                    series.setdefault(base + suffix, set()).update(labels | extra)
    return series


# ----------------------------------------------------------------------------- PromQL
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "atan2", "inf", "nan"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
_TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},])
  | (?P<space>\s+)
""", re.VERBOSE)


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables (``$__rate_interval``, ``$bot``, ``${bot}``)."""
    expr = re.sub(r"\$__\w+|\$\{__\w+\}", "5m", expr)
    return re.sub(r"\$\{\w+(?::\w+)?\}|\$\w+", "x", expr)


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot parse PromQL at {expr[pos:pos + 20]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup != "space":
            out.append((m.lastgroup or "", m.group()))
    return out


def _parse(expr: str) -> tuple[list[tuple[str, set[str]]], set[str]]:
    toks = _tokens(grafana_to_promql(expr))
    selectors: list[tuple[str, set[str]]] = []
    grouping: set[str] = set()
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "ident" and text in GROUPING and nxt == "(":
            j = i + 2
            while toks[j][1] != ")":
                if toks[j][0] == "ident":
                    grouping.add(toks[j][1])
                j += 1
            i = j + 1
            continue
        if kind == "ident" and text == "label_values" and nxt == "(":
            i += 2  # label_values(selector, label): the last argument is a label
            depth, start = 1, i
            while depth:
                depth += {"(": 1, ")": -1}.get(toks[i][1], 0)
                i += 1
            inner = toks[start:i - 1]
            if len(inner) >= 2 and inner[-2][1] == ",":
                grouping.add(inner[-1][1])
                inner = inner[:-2]
            sub, more = _parse(" ".join(t for _, t in inner))
            selectors += sub
            grouping |= more
            continue
        if kind == "ident" and text in AGGREGATIONS and nxt in ("(", "by", "without"):
            i += 1  # `sum by (le) (...)`: the grouping clause is read next
            continue
        if kind == "ident" and text not in KEYWORDS and nxt != "(":
            labels: set[str] = set()
            i += 1
            if i < len(toks) and toks[i][1] == "{":
                i += 1
                while toks[i][1] != "}":
                    if toks[i][0] == "ident":
                        labels.add(toks[i][1])
                        i += 2  # operator, then the string
                    i += 1
                i += 1
            selectors.append((text, labels))
            continue
        i += 1
    return selectors, grouping


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """``(metric name, labels used in its matchers)`` for every selector of ``expr``."""
    return _parse(expr)[0]


def grouping_labels(expr: str) -> set[str]:
    """Labels named in ``by``/``without``/``on``/``ignoring``/``group_*`` and label_values."""
    return _parse(expr)[1]


def problems(expr: str, series: dict[str, set[str]]) -> list[str]:
    """What in ``expr`` the code does not export: unknown series or labels."""
    out = []
    found = selectors(expr)
    if not found:
        out.append(f"{expr!r}: no metric selector")
    available: set[str] = set(TARGET_LABELS)
    for metric, labels in found:
        if metric not in series:
            out.append(f"{expr!r}: metric {metric} is not exported by the code")
            continue
        available |= series[metric]
        unknown = labels - series[metric] - TARGET_LABELS
        if unknown:
            out.append(f"{expr!r}: {metric} has no label {sorted(unknown)} "
                       f"(it has {sorted(series[metric])})")
    missing = grouping_labels(expr) - available
    if missing:
        out.append(f"{expr!r}: grouping by {sorted(missing)}, which no selected metric has")
    return out
