"""pytest plugin: collect garbage after every test, so that no test's leftover cycles are
finalized in the middle of the next one (where coverage's tracer loses its place)."""

import gc

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    gc.collect()
