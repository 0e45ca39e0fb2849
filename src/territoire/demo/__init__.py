"""The demo territory: one place that seeds it, for `territoire demo` and the tests."""
