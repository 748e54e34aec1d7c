"""Every write to reader studies, by topic; import from here."""

from spinereview.studies.services.adjudication import (
    adjudication_tasks_open,
    consensus_mask,
    majority_grades,
    majority_reference_create,
    reference_read_record,
    submitted_reads,
)
from spinereview.studies.services.assignments import assignments_create, calibration_reference_set, washout_assign
from spinereview.studies.services.audit import audit_record, audit_verify
from spinereview.studies.services.reads import grades_validate, read_save, read_submit
from spinereview.studies.services.segmentations import segmentation_from_ai, segmentation_labels_load, segmentation_save
from spinereview.studies.services.studies import (
    assignment_create,
    case_create,
    case_series_roles_set,
    cases_import,
    membership_add,
    reader_study_create,
    reader_study_protocol_update,
)

__all__ = [
    "adjudication_tasks_open",
    "assignment_create",
    "assignments_create",
    "audit_record",
    "audit_verify",
    "calibration_reference_set",
    "case_create",
    "case_series_roles_set",
    "cases_import",
    "consensus_mask",
    "grades_validate",
    "majority_grades",
    "majority_reference_create",
    "membership_add",
    "read_save",
    "read_submit",
    "reader_study_create",
    "reader_study_protocol_update",
    "reference_read_record",
    "segmentation_from_ai",
    "segmentation_labels_load",
    "segmentation_save",
    "submitted_reads",
    "washout_assign",
]
