"""The documentation's code is the code the tests run: docs/writing-plugins.md's worked GRU example is
tests/gru_backend.py (which the backend x codec matrix trains), character for character, so the page can never
show a backend that no longer works."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADING = "### Worked example: a GRU language model"


def _code_block_after(text: str, heading: str) -> str:
    start = text.index("```python\n", text.index(heading)) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_gru_example_in_writing_plugins_is_the_tested_backend():
    shown = _code_block_after((ROOT / "docs" / "writing-plugins.md").read_text(), HEADING)
    module = (ROOT / "tests" / "gru_backend.py").read_text()
    code = module[module.index('"""', 3) + 3 :].lstrip("\n")  # the module without its docstring
    assert shown == code
