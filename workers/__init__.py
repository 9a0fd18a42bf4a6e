"""Fleet workers: market data, bot, risk service, recorder, strategies, indicators, execution."""
