import pytest

from tests.stack import Stack


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path).start()
    yield s
    s.stop()


@pytest.fixture
def make_stack(tmp_path):
    """Build a stack with custom back ends or options: make_stack(backends=..., overrides=...)."""
    made = []

    def _make(**kwargs):
        s = Stack(tmp_path / ("s%d" % len(made)), **kwargs).start()
        made.append(s)
        return s

    yield _make
    for s in made:
        s.stop()
