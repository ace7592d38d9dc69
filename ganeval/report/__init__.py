"""Report writers: tables (CSV, Parquet), summary JSON and a self-contained HTML page."""

from ganeval.report.writers import in_column_order, write_reports

__all__ = ["in_column_order", "write_reports"]
