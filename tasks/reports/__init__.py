"""Pages people look at: an interactive report per video and an index of the corpus.

Static HTML with everything inlined (Bokeh's JavaScript included: the machines that open
them may be offline), written under ``<out>/reports/`` beside the tables.
"""

from affectflow.tasks.reports.write import ReportError, write_reports

__all__ = ["ReportError", "write_reports"]
