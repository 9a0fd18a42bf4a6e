"""The kopf operator: TradingBot -> worker pod, RiskPolicy -> KV, feeds follow the bots.

Modules, top to bottom of the data path:

- :mod:`.config` — OperatorConfig: image, URLs, ports, timings (environment variables).
- :mod:`.builders` — pure ``build_*`` functions returning every child manifest (ConfigMap,
  Deployment, Service, market-data Deployment); the Helm chart mirrors what they say.
- :mod:`.status` — pure: a TradingBot's status, phase and conditions from a heartbeat.
- :mod:`.fleet` — NATS: heartbeats in, pause/resume/drain commands and the policy out.
- :mod:`.kube` — a small async client for the children (kopf handles the custom resources).
- :mod:`.marketdata` — one feed Deployment per venue, symbols = union of its bots'.
- :mod:`.handlers` — the kopf handlers (``build_registry(config)``).
- :mod:`.rbac` — the ClusterRole rules as data for the Helm chart.
- :mod:`.main` — ``tradefleet operator``.
"""
