"""The session managers, the stores with drivers of their own and the web layer's
request/response core: the code that does I/O, written once (docs/development.md, "One
source, two APIs")."""
