"""The sealed-cookie session manager; its parts (codec, key ring, revocation records) are in
:mod:`coatcheck.sealed`.

That package re-exports the manager and is loaded first, so that importing the manager on its
own never starts in the middle of it (a circle).
"""

from ... import sealed as sealed
