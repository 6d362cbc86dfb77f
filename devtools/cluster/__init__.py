"""Three test hosts on one machine (network namespaces on a private bridge) running the
high-availability set-up of deploy/: `make cluster`, `make cluster-chaos`, `make cluster-stop`."""
