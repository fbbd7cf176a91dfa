"""Shared pytest setup: fixture modules are plugins, listed here once."""

pytest_plugins: list[str] = [
    # each fixture module of tests/ registers itself here, one line each
    "tests.gpio_double",
    "tests.fixtures_pulse",
    "tests.fixtures_server",
    "tests.mcp_home",
    "tests.fixtures_mqtt",
]
