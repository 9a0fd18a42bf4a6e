"""HTTP and WebSocket routes of the exsim server, one module per API area."""
