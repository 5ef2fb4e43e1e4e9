"""The async source of the session manager."""
