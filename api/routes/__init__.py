"""HTTP and WebSocket routes: thin functions over the service (api/service.py)."""
