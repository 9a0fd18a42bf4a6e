"""The operator's RBAC rules, as data the Helm chart renders (least privilege).

``CLUSTER_ROLE_RULES`` go into the operator's ClusterRole (bots live in any namespace);
``cluster_role(name)`` gives the whole object. What is deliberately absent: Secrets (a bot
pod reads its exchange keys through ``env.valueFrom.secretKeyRef``; the operator never
reads them), Pods (it only manages Deployments), and kopf's peering resources (the
operator runs ``standalone``, one replica with ``Recreate``).
"""

from __future__ import annotations

from typing import Any

from tradefleet.api import API_GROUP

CLUSTER_ROLE_RULES: list[dict[str, Any]] = [
    # The custom resources: watch them, patch finalizers/annotations and status.
    {"apiGroups": [API_GROUP], "resources": ["tradingbots", "riskpolicies"],
     "verbs": ["get", "list", "watch", "patch", "update"]},
    {"apiGroups": [API_GROUP], "resources": ["tradingbots/status", "riskpolicies/status"],
     "verbs": ["get", "patch", "update"]},
    # Children of a TradingBot (and the market-data feeds' Deployments).
    {"apiGroups": [""], "resources": ["configmaps", "services"],
     "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]},
    {"apiGroups": ["apps"], "resources": ["deployments"],
     "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]},
    # Events users see in `kubectl describe`.
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
     "verbs": ["create", "patch"]},
    # kopf: cluster-wide watching discovers namespaces and CRDs.
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
     "verbs": ["get", "list", "watch"]},
]


def cluster_role(name: str = "tradefleet-operator") -> dict[str, Any]:
    """The ClusterRole manifest with :data:`CLUSTER_ROLE_RULES`."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "tradefleet"}},
            "rules": CLUSTER_ROLE_RULES}


__all__ = ["CLUSTER_ROLE_RULES", "cluster_role"]
