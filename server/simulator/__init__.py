"""A simulated city that uses the service over its real protocol: the demo and a soak test.

`python -m server simulate --drivers N --rate R --base-url URL` runs it against any running
service; `python -m devtools.demo` starts the service on this machine and runs it there.
"""
