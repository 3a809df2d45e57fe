"""The import contracts in pyproject.toml ([tool.importlinter]) hold: data flows one way."""

from importlinter.cli import lint_imports


def test_imports_point_one_way() -> None:
    # Exit code 0 only when every contract (area layers, steps inside monitor,
    # pure detectors) is kept; the report names the offending import otherwise.
    assert lint_imports(no_cache=True) == 0
