"""Comparisons: this sweep's variants against its first, and against finished sweeps of other sessions
(baseline folders checked, judge's verdicts, the facts that differ, the figure and the page)."""
