"""Fences Python subprocesses of the test suite (see tests/support/netfence.py).

tests/conftest.py puts this directory first on PYTHONPATH and sets MAILBOX_TEST_NETFENCE=1;
``site`` then imports this module at interpreter start-up. Being on PYTHONPATH is what turns
the fence on: tests that pass a child os.environ minus ``MAILBOX_*`` (tests/app/test_deploy.py)
drop the flag but keep PYTHONPATH, and are fenced all the same. Only an explicit
MAILBOX_TEST_NETFENCE=0 opts out. The fence is loaded by file path because a child's sys.path
need not hold the checkout (``streamlit run`` runs in a temp dir). A sitecustomize further
down sys.path (the venv's, the interpreter's) is still run after this one.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _install_fence() -> None:
    path = os.path.join(os.path.dirname(_HERE), "netfence.py")
    spec = importlib.util.spec_from_file_location("mailbox_test_netfence", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.install()


def _chain() -> None:
    """Run the sitecustomize this one shadows, if any."""
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or spec.origin == os.path.abspath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    globals()["chained"] = module


if os.environ.get("MAILBOX_TEST_NETFENCE", "1") == "1":
    try:
        _install_fence()
    except Exception as exc:  # site.py would only print "Error in sitecustomize" and go on
        sys.stderr.write(f"network fence: could not be installed in {sys.argv!r}: {exc!r}\n")
        raise SystemExit(70) from exc
_chain()
