"""The sealed-cookie session manager."""
