"""OpenID Connect's I/O: the provider client (HTTP to the OpenID Provider) and the session
side of login, refresh and logout. The pure parts live in :mod:`coatcheck.oidc`."""
