"""The bot worker: one process per TradingBot (``tradefleet bot --config bot.yaml``)."""
