from django.db import models

from spinereview.core.models import BaseModel


class DicomStudy(BaseModel):
    study_instance_uid = models.CharField(max_length=64, unique=True)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=324, blank=True)
    study_date = models.CharField(max_length=8, blank=True)
    study_description = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "DICOM studies"

    def __str__(self) -> str:
        return self.study_description or self.study_instance_uid


class DicomSeries(BaseModel):
    study = models.ForeignKey(DicomStudy, on_delete=models.PROTECT, related_name="series")
    series_instance_uid = models.CharField(max_length=64, unique=True)
    modality = models.CharField(max_length=16)
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=64, blank=True)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "DICOM series"

    def __str__(self) -> str:
        return self.series_description or self.series_instance_uid


class DicomInstance(BaseModel):
    series = models.ForeignKey(DicomSeries, on_delete=models.PROTECT, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    # Position of the slice along its own normal (mm): sorts a series in space, not by file order.
    slice_position_mm = models.FloatField(null=True, blank=True)
    # Path below MEDIA_ROOT of the stored file, exactly as received.
    file_path = models.CharField(max_length=255)
    # DICOM JSON (PS3.18 F.2) of every attribute except pixel data, kept for fast WADO-RS metadata.
    dicom_json = models.JSONField()
    # Byte offset of the Pixel Data value in the stored file when it is uncompressed Explicit VR Little
    # Endian (frames are then read with one seek, no parsing); null otherwise.
    pixel_data_offset = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["slice_position_mm", "instance_number"]

    def __str__(self) -> str:
        return self.sop_instance_uid


class ReferenceSegmentation(BaseModel):
    """A ground-truth label volume for a series (e.g. the phantom's exact labels)."""

    series = models.ForeignKey(DicomSeries, on_delete=models.PROTECT, related_name="reference_segmentations")
    source = models.CharField(max_length=128)
    label_map = models.JSONField()
    sop_instance_uids = models.JSONField()
    shape = models.JSONField()
    file_path = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "source"], name="unique_reference_per_source")]


class PseudonymousPatient(BaseModel):
    """Re-identification key of one patient: the original identity and its pseudonym and date offset.

    This is the only place original identities are kept. It is read only through
    selectors.study_reidentification_get (administrators, or leads of a reader study whose protocol
    permits re-identification); no API or DICOMweb response serves it to readers.
    """

    # "id:<issuer>|<PatientID>", or "study:<StudyInstanceUID>" when the files carry no PatientID.
    original_key = models.CharField(max_length=200, unique=True)
    original_patient_id = models.CharField(max_length=64, blank=True)
    original_patient_name = models.CharField(max_length=324, blank=True)
    patient_id = models.CharField(max_length=64, unique=True)
    patient_name = models.CharField(max_length=64)
    date_offset_days = models.IntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(date_offset_days=0), name="date_offset_not_zero")]

    def __str__(self) -> str:
        return self.patient_id


class PseudonymousUid(BaseModel):
    """One UID remapped at import (study, series, instance, frame of reference, ...): original -> replacement."""

    original_uid = models.CharField(max_length=64, unique=True)
    uid = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return self.uid


class StudyReidentification(BaseModel):
    """Which pseudonymous patient a de-identified study belongs to, and its original study-level identifiers."""

    dicom_study = models.OneToOneField(DicomStudy, on_delete=models.PROTECT, related_name="reidentification")
    patient = models.ForeignKey(PseudonymousPatient, on_delete=models.PROTECT, related_name="studies")
    original_study_instance_uid = models.CharField(max_length=64)
    original_accession_number = models.CharField(max_length=16, blank=True)
    original_study_date = models.CharField(max_length=8, blank=True)

    def __str__(self) -> str:
        return f"{self.dicom_study} ({self.patient})"
