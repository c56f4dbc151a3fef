"""The api role's application: REST, SSE, WebSocket, the web UI (DESIGN §7)."""
