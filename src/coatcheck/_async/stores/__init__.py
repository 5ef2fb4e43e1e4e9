"""The stores that have drivers of their own (PostgreSQL, Redis): each store class and its
connection handling; the rest of each store is its package under :mod:`coatcheck.stores`.

That package re-exports names from here and is loaded first, so that importing one of these
modules on its own never starts in the middle of it (a circle).
"""

from ... import stores as stores
