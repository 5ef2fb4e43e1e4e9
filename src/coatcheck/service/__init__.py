"""The session service (``coatcheck serve``): a JSON API that other services call to create,
validate and revoke sessions and API tokens, and the pages where people see and end their
sessions. It keeps no state of its own outside the store, so any number of processes can serve
one store (docs/service.md)."""
