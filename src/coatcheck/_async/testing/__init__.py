"""Test helpers that go through a session manager's own login.

:mod:`coatcheck.testing` re-exports them and is loaded first, so that importing one of these
modules on its own never starts in the middle of it (a circle).
"""

from ... import testing as testing
