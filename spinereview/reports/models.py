from django.conf import settings
from django.db import models

from spinereview.core.models import BaseModel
from spinereview.studies.models import ReaderStudy


class AgreementReport(BaseModel):
    """A computed statistics report, cached per study and per fingerprint of everything it was computed
    from (submitted reads, references, AI results, masks, protocol, bootstrap settings). A report whose
    fingerprint differs from the study's current one is stale; computing the same inputs twice finds
    the existing row instead of adding one."""

    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="agreement_reports")
    inputs_sha256 = models.CharField(max_length=64)
    report = models.JSONField()
    software_version = models.CharField(max_length=100)
    duration_s = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reader_study", "inputs_sha256"], name="one_report_per_inputs")]


class DataFreeze(BaseModel):
    """A study's analysis frozen for a paper: files written once under MEDIA_ROOT/freezes/ (reads,
    reference, AI results, statistics, protocol, manifest) and the archive of them, each with its
    sha256 here. Rows are never updated; a new freeze of the same study is the next version."""

    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.PROTECT, related_name="data_freezes")
    version = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)
    software_version = models.CharField(max_length=100)
    inputs_sha256 = models.CharField(max_length=64)
    folder = models.CharField(max_length=255)
    files = models.JSONField()  # {"reads.csv": "<sha256>", ...}
    archive_sha256 = models.CharField(max_length=64)
    archive_bytes = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["reader_study", "version"]
        constraints = [
            models.UniqueConstraint(fields=["reader_study", "version"], name="unique_freeze_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="freeze_version_from_one"),
        ]
