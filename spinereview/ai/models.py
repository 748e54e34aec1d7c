from django.db import models

from spinereview.core.models import BaseModel
from spinereview.imaging.models import DicomSeries, DicomStudy


class ModelVersion(BaseModel):
    """A registered checkpoint folder. ``version`` is "<name>@<first 12 hex of the weights' sha256>"."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=128, unique=True)
    path = models.CharField(max_length=500)
    label_map = models.JSONField()
    config = models.JSONField()
    metrics = models.JSONField(default=dict)
    # The global default: the model of every reader study that has not chosen its own (StudyModel).
    is_active = models.BooleanField(default=False)
    model_card = models.TextField(blank=True)
    registered_by = models.CharField(max_length=150, blank=True)

    class Status(models.TextChoices):
        # An upload through the web is checked there without torch (config, label map, weights archive
        # CRCs); a gpu worker then loads the weights into the architecture before the model may be used.
        VERIFYING = "verifying", "Being verified on a worker"
        READY = "ready", "Ready"
        REFUSED = "refused", "Refused"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    refusal = models.TextField(blank=True)
    # An upload asked to become the global default: done by the worker once the weights are verified.
    activate_when_ready = models.BooleanField(default=False)
    # The checkpoint's stenosis grader (its grader/ folder), or {} without one:
    # {"name", "version" ("<name>@<sha256[:12]>"), "grades" (class names, mildest first), "heldout",
    #  "tasks": {task: {"classes" (mildest/absent first), "heldout"}} (the grader's other tasks; {} or
    #  missing, for versions registered before graders had tasks, when it grades stenosis only)}.
    grader = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_model"),
        ]
        permissions = [("manage_models", "Register and activate AI model versions and see every inference job")]

    def __str__(self) -> str:
        return self.version


class StudyModel(BaseModel):
    """The model version a reader study uses instead of the global default (its readers' AI output,
    its reports' AI rater)."""

    reader_study = models.OneToOneField("studies.ReaderStudy", on_delete=models.CASCADE, related_name="ai_model")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="studies")
    activated_by = models.CharField(max_length=150, blank=True)


class InferenceJob(BaseModel):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    series = models.ForeignKey(DicomSeries, on_delete=models.PROTECT, related_name="inference_jobs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="jobs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Slices in the series (known when the job starts) and the share segmented so far, 0..1.
    slices = models.PositiveIntegerField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    # When the task was handed to the broker; null while unpublished (the sweeper publishes it).
    published = models.DateTimeField(null=True, blank=True)
    # Last sign of life of the attempt running it (each batch), and which worker process that is.
    heartbeat = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # Model forward + pre/postprocessing time of the successful attempt, for throughput (slices/s).
    compute_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "model_version"], name="one_job_per_series_and_model")]


class AISegmentation(BaseModel):
    job = models.OneToOneField(InferenceJob, on_delete=models.PROTECT, related_name="segmentation")
    series = models.ForeignKey(DicomSeries, on_delete=models.PROTECT, related_name="ai_segmentations")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="segmentations")
    label_map = models.JSONField()
    shape = models.JSONField()
    sop_instance_uids = models.JSONField()
    file_path = models.CharField(max_length=255)


class AILevelMeasurement(BaseModel):
    """Per-level quantities derived from a case's AI masks, and the model's grader's grades of the level
    (when the model has a grader): stenosis, and the grader's other tasks. Which grade a reader study's
    reports use for which condition (the grader's, or the DSCA's through the protocol's cut-offs) is
    decided where the protocol is known: ai.selectors.ai_condition_grade."""

    dicom_study = models.ForeignKey(DicomStudy, on_delete=models.PROTECT, related_name="ai_level_measurements")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="level_measurements")
    level = models.CharField(max_length=16)
    dsca_mm2 = models.FloatField(null=True)
    min_dsca_mm2 = models.FloatField(null=True)
    axial_slice_index = models.IntegerField(null=True)
    distance_to_disc_mm = models.FloatField(null=True)
    # Spinal canal AP diameter on the axial slice nearest the disc mid-plane, along the patient's AP axis.
    ap_diameter_mm = models.FloatField(null=True)
    # Disc heights on the mid-sagittal slice, in the disc's own frame.
    disc_height_anterior_mm = models.FloatField(null=True)
    disc_height_middle_mm = models.FloatField(null=True)
    disc_height_posterior_mm = models.FloatField(null=True)
    # Paraspinal muscle cross-sectional area (mm2) and fat fraction (%) per side on the reference
    # slice, and how the fat fraction was obtained (fat/water pair or intensity model).
    muscle_csa_left_mm2 = models.FloatField(null=True)
    muscle_csa_right_mm2 = models.FloatField(null=True)
    muscle_fat_fraction_left_percent = models.FloatField(null=True)
    muscle_fat_fraction_right_percent = models.FloatField(null=True)
    muscle_fat_method = models.CharField(max_length=200, blank=True)
    # Why a quantity has no value: {"ap_diameter_mm": "the spinal canal is not drawn on ..."}.
    errors = models.JSONField(default=dict)
    # Set when levels could not be named with confidence (e.g. not exactly five discs found).
    flag = models.CharField(max_length=300, blank=True)
    # The grader's grade on the axial slice at axial_slice_index: class index (0 = mildest) and name
    # (ModelVersion.grader["grades"]), the class probabilities, and the grader that gave it. grader_version
    # is set once the level was graded, also when it could not be (then errors["grade"] says why).
    grade_index = models.SmallIntegerField(null=True)
    grade_name = models.CharField(max_length=64, blank=True)
    grade_probabilities = models.JSONField(null=True)
    grader_version = models.CharField(max_length=128, blank=True)
    # The grader's other tasks' grades on the same slice (ModelVersion.grader["tasks"]), by task:
    # {task: {"index": int, "name": str, "probabilities": {class: p}}}; {} while not graded, and for a
    # level the grader could not grade (errors["grade"] says why).
    task_grades = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dicom_study", "model_version", "level"], name="one_measurement_per_level")]
