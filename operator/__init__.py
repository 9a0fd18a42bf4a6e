"""The kopf operator that reconciles TradingBot resources into worker pods."""
