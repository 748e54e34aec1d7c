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
    # {"levels": [...], "conditions": [{"key", "label", "scale": {"name", "categories": [{"code", "label"}]}}],
    #  "ai_grade": {"condition": "central_canal", "dsca_cutoffs_mm2": [100, 75, 50]}}
    protocol = models.JSONField()
    ai_visibility = models.CharField(max_length=16, choices=AiVisibility.choices, default=AiVisibility.ALWAYS)

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

    class Meta:
        ordering = ["label"]
        constraints = [models.UniqueConstraint(fields=["reader_study", "dicom_study"], name="unique_case_per_study")]

    def __str__(self) -> str:
        return self.label


class CaseSeries(BaseModel):
    class Role(models.TextChoices):
        SAGITTAL_T2 = "sagittal_t2", "Sagittal T2"
        AXIAL_T2 = "axial_t2", "Axial T2"
        OTHER = "other", "Other"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="case_series")
    series = models.ForeignKey(DicomSeries, on_delete=models.PROTECT, related_name="case_series")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "series"], name="unique_series_per_case")]


class Assignment(BaseModel):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="assignments")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "case__label"]
        constraints = [models.UniqueConstraint(fields=["case", "reader"], name="unique_assignment")]


class ReadVersion(BaseModel):
    """One save of a reader's read. Saves never overwrite: each is a new, numbered version."""

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="read_versions")
    version = models.PositiveIntegerField()
    submitted = models.BooleanField(default=False)
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
