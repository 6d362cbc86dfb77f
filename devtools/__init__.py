"""Development tooling, not shipped: private PostgreSQL and Redis (`localdev`), the service as a
child process (`processes`), and `make demo` (`demo`). Standard library only at import time, so
`make stop` can run it before the virtualenv exists."""
