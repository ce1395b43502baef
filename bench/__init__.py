"""Benchmarks of the gateway, run by hand (``python -m bench.crud``); they are not tests.

They live outside ``gateway/`` so nothing here ships with the service, and outside ``tests/``
so pytest never collects them: a benchmark needs a quiet machine and minutes, a test neither.
"""
