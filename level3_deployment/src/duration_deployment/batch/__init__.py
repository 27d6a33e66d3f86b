"""Batch deployment: ``duration-score`` scores whole TLC months with a registered model
version and writes the predictions as a partitioned parquet dataset.

``base`` holds what the job and the engines share; ``job`` runs a scoring job (resolve the
model and the months, one engine per job, a summary); ``output`` owns the dataset's schema and
its all-or-nothing publication per month; ``pandas_engine`` scores in process in record
batches; ``spark_engine`` with Apache Spark. The console script is
:mod:`duration_deployment.cli.score`.
"""

from duration_deployment.batch.base import ScoreError
from duration_deployment.batch.job import MonthResult, MonthSource, ScoreSummary, score_months

__all__ = ["MonthResult", "MonthSource", "ScoreError", "ScoreSummary", "score_months"]
