"""Markdown + PNG reports of runs: one per workdir, and the aggregate of several seeds.

    report   tables of a workdir (results.json, metrics.jsonl, checkpoint statistics) and
             the aggregate over runs (`write_report`, `workdir_report`, `aggregate_report`)
    figures  the matplotlib figures (accuracy, curves with restarts, 2nd-class matrices)

Command: `jaxkd report --workdir=W [--workdir=W2 ...]` (or `python -m jaxkd.report`).
"""

from jaxkd.report import figures
from jaxkd.report.report import (ANALYSIS_JSON, REPORT, ConfigsDifferError,
                                 aggregate_report, check_comparable, config_differences,
                                 curve_series, format_results, load_plan, phase_records,
                                 read_config, read_metrics, sd_section, workdir_report,
                                 write_report)

__all__ = ["ANALYSIS_JSON", "REPORT", "ConfigsDifferError", "aggregate_report",
           "check_comparable", "config_differences", "curve_series", "figures",
           "format_results", "load_plan", "phase_records", "read_config", "read_metrics",
           "sd_section", "workdir_report", "write_report"]
