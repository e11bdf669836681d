"""Registers the bundle's plugin (``pmp.plugin``) from a plugins folder, where the installed ``pmp``
package does not already register it through its ``airflow.plugins`` entry point.

Only one of the two may define it: Airflow 3.3's Task SDK plugin loader stops registering a list of
plugins at the first name it has seen (a ``return`` in ``airflow.sdk.plugins_manager._get_plugins``),
so this folder's copy of "pmp" made every task process skip the entry-point plugins listed after the
package's own, OpenLineage's listener among them (no task-level lineage events at all).
"""

from importlib.metadata import entry_points

if not any(ep.value == "pmp.plugin:PmpPlugin" for ep in entry_points(group="airflow.plugins")):
    from pmp.plugin import PmpPlugin

    __all__ = ["PmpPlugin"]
