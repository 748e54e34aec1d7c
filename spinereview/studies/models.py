from django.conf import settings
from django.db import models

from spinereview.core.models import BaseModel
from spinereview.imaging.models import DicomSeries, DicomStudy


class ReaderStudy(BaseModel):
    class AiVisibility(models.TextChoices):
        ALWAYS = "always", "AI shown from the start"
        AFTER_SUBMIT = "after_submit", "AI shown after the unaided read is submitted"
        NEVER = "never", "AI never shown to readers"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    # The normalised protocol (studies.protocols.protocol_validate): levels, conditions with inlined fixed
    # category lists, sub-questions, measurement and segmentation tasks, two_phase, adjudication thresholds.
    protocol = models.JSONField()
    ai_visibility = models.CharField(max_length=16, choices=AiVisibility.choices, default=AiVisibility.ALWAYS)
    # Seed of the per-reader reading order, so a study's randomisation can be reproduced and reported.
    randomisation_seed = models.BigIntegerField(default=0)
    # A reader starts with every calibration case (known reference read, feedback shown) before live reading.
    calibration_required = models.BooleanField(default=False)
    # Whether the study's leads may look up the original patient identity of its de-identified cases
    # (the ethics approval decides; off unless the lead sets it when creating the study).
    reidentification_permitted = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "reader studies"

    def __str__(self) -> str:
        return self.name


class StudyMembership(BaseModel):
    class Role(models.TextChoices):
        LEAD = "lead", "Study lead"
        READER = "reader", "Reader"
        ADJUDICATOR = "adjudicator", "Adjudicator"

    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reader_study", "user", "role"], name="unique_membership_role")]


class Case(BaseModel):
    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.PROTECT, related_name="cases")
    dicom_study = models.ForeignKey(DicomStudy, on_delete=models.PROTECT, related_name="cases")
    label = models.CharField(max_length=100)
    # Calibration cases train readers against a reference read; they are kept out of the study's statistics.
    is_calibration = models.BooleanField(default=False)

    class Meta:
        ordering = ["label"]
        constraints = [models.UniqueConstraint(fields=["reader_study", "dicom_study"], name="unique_case_per_study")]

    def __str__(self) -> str:
        return self.label


class CaseSeries(BaseModel):
    class Role(models.TextChoices):
        SAGITTAL_T2 = "sagittal_t2", "Sagittal T2"
        SAGITTAL_T1 = "sagittal_t1", "Sagittal T1"
        AXIAL_T2 = "axial_t2", "Axial T2"
        OTHER = "other", "Other"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="case_series")
    series = models.ForeignKey(DicomSeries, on_delete=models.PROTECT, related_name="case_series")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "series"], name="unique_series_per_case")]


class Assignment(BaseModel):
    class Kind(models.TextChoices):
        LIVE = "live", "Live read"
        WASHOUT = "washout", "Washout re-read"
        CALIBRATION = "calibration", "Calibration"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="assignments")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LIVE)
    order = models.PositiveIntegerField(default=0)
    # Washout re-reads open only after the interval since the reader's first read of the case.
    available_from = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order", "case__label"]
        constraints = [models.UniqueConstraint(fields=["case", "reader", "kind"], name="unique_assignment_kind")]


class ReadVersion(BaseModel):
    """One save of a reader's read. Saves never overwrite: each is a new, numbered version."""

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="read_versions")
    class Phase(models.TextChoices):
        UNAIDED = "unaided", "Unaided read"
        AIDED = "aided", "AI-aided read"

    version = models.PositiveIntegerField()
    # Versions number every save of the assignment across both phases; the phase says which read it is.
    phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.UNAIDED)
    submitted = models.BooleanField(default=False)
    # Reading time the viewer reports for this phase so far (seconds, cumulative).
    elapsed_s = models.FloatField(default=0.0)
    saved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Free text for simulated or imported reads ("simulated demo reader"); empty for reads made in the viewer.
    provenance = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["assignment", "version"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "version"], name="unique_read_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="read_version_from_one"),
        ]


class Grade(BaseModel):
    read_version = models.ForeignKey(ReadVersion, on_delete=models.PROTECT, related_name="grades")
    level = models.CharField(max_length=16)
    condition = models.CharField(max_length=64)
    value = models.CharField(max_length=16)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["read_version", "level", "condition"], name="unique_grade_per_version")]


class Measurement(BaseModel):
    """A measurement drawn by a reader, as saved in one read version (values recomputed by the server
    from the points, in patient coordinates)."""

    class Kind(models.TextChoices):
        LENGTH = "length"
        AREA = "area"
        DISC_HEIGHT = "disc_height"

    read_version = models.ForeignKey(ReadVersion, on_delete=models.PROTECT, related_name="measurements")
    measurement_id = models.UUIDField()  # the viewer's id: the same measurement keeps it across versions
    key = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    level = models.CharField(max_length=16)
    label = models.CharField(max_length=200, blank=True)
    series_instance_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    points_mm = models.JSONField()
    values = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["read_version", "measurement_id"], name="unique_measurement_per_version")]


class SegmentationVersion(BaseModel):
    """One save of a reader's labelmap for one series; never overwritten."""

    class Source(models.TextChoices):
        READER = "reader", "Drawn by the reader"
        AI_COPY = "ai_copy", "Copied from the AI, then the reader's"

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="segmentation_versions")
    series = models.ForeignKey(DicomSeries, on_delete=models.PROTECT, related_name="reader_segmentations")
    version = models.PositiveIntegerField()
    phase = models.CharField(max_length=8, choices=ReadVersion.Phase.choices, default=ReadVersion.Phase.UNAIDED)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.READER)
    saved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file_path = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    shape = models.JSONField()
    voxels_per_label = models.JSONField()  # {"4": 1234, ...}
    # Per-level quantities from this mask (DSCA etc.), computed on save: [{"level", "dsca_mm2", ...}].
    level_measurements = models.JSONField(default=list)
    # Why this mask could not be measured at all (empty, no usable geometry, no levels): "" when measured.
    measurement_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["assignment", "series", "version"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "series", "version"], name="unique_segmentation_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="segmentation_version_from_one"),
        ]


class LevelDelta(BaseModel):
    """Reader mask minus AI, per level and quantity (e.g. "dsca_mm2"), against one model version;
    stored on each save and when the AI's measurements arrive, for the compare view and the reports."""

    segmentation_version = models.ForeignKey(SegmentationVersion, on_delete=models.CASCADE, related_name="level_deltas")
    model_version = models.ForeignKey("ai.ModelVersion", on_delete=models.PROTECT, related_name="+")
    level = models.CharField(max_length=16)
    quantity = models.CharField(max_length=48)
    reader_value = models.FloatField(null=True)
    ai_value = models.FloatField(null=True)
    delta = models.FloatField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segmentation_version", "model_version", "level", "quantity"], name="one_delta_per_quantity")
        ]


class ReferenceRead(BaseModel):
    """A case's reference grades: recorded by an adjudicator, given for calibration, or derived by majority
    vote. Versioned like reads: a new reference is a new row, the newest per (case, source) counts."""

    class Source(models.TextChoices):
        ADJUDICATED = "adjudicated", "Adjudicated"
        CALIBRATION = "calibration", "Calibration key"
        MAJORITY = "majority", "Majority vote"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="reference_reads")
    source = models.CharField(max_length=16, choices=Source.choices)
    version = models.PositiveIntegerField()
    grades = models.JSONField()  # [{"level", "condition", "value"}]
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    note = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "source", "version"], name="unique_reference_version")]


class AdjudicationTask(BaseModel):
    """A disagreement between readers beyond the protocol's threshold, for an adjudicator to resolve."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="adjudication_tasks")
    level = models.CharField(max_length=16)
    item = models.CharField(max_length=64)  # a condition key, or "dsca" for a DSCA disagreement
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    resolution = models.ForeignKey(ReferenceRead, on_delete=models.PROTECT, null=True, blank=True, related_name="resolved_tasks")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "level", "item"], name="one_adjudication_task_per_item")]


class AuditEvent(models.Model):
    """Append-only, hash-chained log of every change to a study's data: each event's hash covers its
    content and the previous event's hash, so `manage.py audit_verify` detects an edited or deleted row."""

    sequence = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150)
    origin = models.CharField(max_length=200, blank=True)  # client address and agent of a web request
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    reader_study_id = models.UUIDField(null=True, blank=True, db_index=True)
    details = models.JSONField(default=dict)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} by {self.actor}"
