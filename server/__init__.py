"""Composition: the app that wires every domain together (`server.app`), the command line
(`python -m server`), the web pages, the exports, the AsyncAPI document and the simulated city.
Nothing imports it but the tests and the development tooling."""
