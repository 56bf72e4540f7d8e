"""The results store (crash-safe HDF5, docs/results-format.md), tables and plots."""

from .store import ResultsWriter, format_table, read_results, summary_records

__all__ = ["ResultsWriter", "format_table", "read_results", "summary_records"]
