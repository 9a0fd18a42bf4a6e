"""``tradefleet run``: the whole fleet on one machine, each component its own process.

``supervisor`` starts, watches and restarts the component processes (the same entrypoints
the pods run); the fleet runner wires embedded NATS/PostgreSQL, exsim, marketdata, risk,
recorder and one bot per manifest; ``live`` draws the terminal view; ``report`` writes the
fleet report.
"""
