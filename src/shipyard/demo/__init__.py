"""The built-in support-desk demo: an agent, its tools and data, and a project folder to copy.

`shipyard demo` and `shipyard init --demo` copy `project_dir()` (shipyard.yaml, prompt bundles
v1.0 and v1.1, rules for the offline scripted model) into a work folder with `copy_project`."""

from shipyard.demo._project import copy_project, project_dir
from shipyard.demo._store import DemoStore, OrderNotFound, RefundRefused
from shipyard.demo._tools import STORE, TOOLS
from shipyard.demo.agent import support

__all__ = [
    "STORE",
    "TOOLS",
    "DemoStore",
    "OrderNotFound",
    "RefundRefused",
    "copy_project",
    "project_dir",
    "support",
]
