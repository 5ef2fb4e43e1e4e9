"""The test app (:func:`oidc.apps.starlette_app` behind ``with_oidc``) as a uvicorn factory, for
tests that run it in processes of their own::

    python -m uvicorn --factory oidc.process_app:app --app-dir tests --port 8000

Its settings come from the environment: ``COATCHECK_OIDC_*`` for the relying party and
``COATCHECK_STORE_URL`` for the session store.
"""

from __future__ import annotations

import os
from typing import Any

from coatcheck import AsyncSessionManager, open_async_store
from coatcheck.oidc import read_oidc_settings

from .apps import default_stack


def app() -> Any:
    settings = read_oidc_settings(os.environ)
    if settings is None:
        raise RuntimeError("process_app needs COATCHECK_OIDC_ISSUER in the environment")
    manager = AsyncSessionManager(open_async_store(os.environ["COATCHECK_STORE_URL"]))
    return default_stack(manager, settings)
