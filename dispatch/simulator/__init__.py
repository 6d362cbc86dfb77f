"""A simulated city that uses the service over its real protocol: the demo and a soak test.

`python -m dispatch simulate --drivers N --rate R --base-url URL` runs it against any running
service; `python -m dispatch demo` starts the service on this machine and runs it there.
"""
