"""exsim: a Binance USDⓈ-M futures exchange simulator.

It imports nothing else of tradefleet, so it stays a standalone exchange. ``engine`` is the
plain matching library (no web code; the backtester reuses it); ``server`` speaks the
Binance REST and WebSocket APIs over it.
"""
