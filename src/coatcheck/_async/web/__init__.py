"""The web layer's request/response core and what it needs from a session manager."""
