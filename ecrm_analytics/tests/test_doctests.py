"""Every docstring Example in the library runs as a doctest (numpydoc Examples are documentation that
must stay true)."""

import doctest
import importlib
import pkgutil

import pytest

import ecrm_analytics

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(ecrm_analytics.__path__, "ecrm_analytics.")
    if ".tests" not in m.name
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"
