"""Report writers: tables (CSV, Parquet), summary JSON and a self-contained HTML page."""

from ganeval.report.writers import write_reports

__all__ = ["write_reports"]
