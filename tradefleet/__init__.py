"""tradefleet: a Kubernetes-native fleet of trading bots for perpetual futures.

Shared core lives here: ``api`` (the CRD models), ``bus`` (NATS subjects and streams),
``telemetry`` and ``cli``. The components are ``tradefleet.exsim`` (exchange simulator),
``tradefleet.workers`` (market data, bots, risk, recorder) and ``tradefleet.operator``.
"""

__version__ = "0.1.0"
