"""Load the demo: accounts, a reader study of phantom cases, and simulated reads on all but one case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from spinereview.accounts.models import User
from spinereview.imaging.selectors import series_get_by_original_uid
from spinereview.imaging.services import reference_segmentation_import, sources_from_path
from spinereview.morphometry import stenosis_grade_from_dsca
from spinereview.studies.models import Case, ReaderStudy, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL, condition_categories
from spinereview.studies.services import assignment_create, cases_import, membership_add, read_save, read_submit, reader_study_create

DEMO_SLUG = "demo"
ACCOUNTS = {"lead": StudyMembership.Role.LEAD, "reader1": StudyMembership.Role.READER, "reader2": StudyMembership.Role.READER, "adjudicator": StudyMembership.Role.ADJUDICATOR}
# Simulated readers: probability of grading one step higher / lower than the phantom's true grade.
# reader1 is close to the truth; reader2 tends to over-call stenosis, as readers often do.
READER_ERRORS = {"reader1": (0.10, 0.10), "reader2": (0.30, 0.05)}
# Probability that a simulated reader calls the sedimentation sign the other way round from the phantom's truth.
SIGN_ERRORS = {"reader1": 0.10, "reader2": 0.20}


def simulated_grade(true_index: int, *, rng: np.random.Generator, up: float, down: float, n_categories: int) -> int:
    draw = rng.random()
    if draw < up:
        return min(true_index + 1, n_categories - 1)
    if draw < up + down:
        return max(true_index - 1, 0)
    return true_index


class Command(BaseCommand):
    help = "Create the demo accounts and reader study from phantom cases written by `python -m ml phantom`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("phantom_dir", type=Path, help="folder with one sub-folder per phantom case")
        parser.add_argument("--password", required=True)
        parser.add_argument("--seed", type=int, default=7, help="seed of the simulated readers")

    def handle(self, *args: Any, **options: Any) -> None:
        if ReaderStudy.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("Demo study already loaded; nothing to do.")
            return
        case_dirs = sorted(p for p in options["phantom_dir"].iterdir() if (p / "dicom").is_dir())
        if len(case_dirs) < 2:
            raise CommandError(f"{options['phantom_dir']} needs at least two phantom cases (one to read, the others pre-read)")
        users = self._accounts(options["password"])
        with transaction.atomic():
            study = reader_study_create(name="Lumbar stenosis demo (phantom)", slug=DEMO_SLUG, protocol=DEFAULT_PROTOCOL)
            for username, role in ACCOUNTS.items():
                membership_add(reader_study=study, user=users[username], role=role)
        rng = np.random.default_rng(options["seed"])
        # a stream of its own, so that the stenosis grades stay those of the same seed before the sign existed
        sign_rng = np.random.default_rng([options["seed"], 1])
        for index, case_dir in enumerate(case_dirs):
            truth = json.loads((case_dir / "truth" / "measurements.json").read_text())
            case = self._import_case(study, case_dir, truth)
            for reader in ("reader1", "reader2"):
                assignment = assignment_create(case=case, reader=users[reader], order=index)
                if index > 0:  # the first case is left for the person trying the demo
                    self._simulate_read(assignment, users[reader], truth, rng, *READER_ERRORS[reader], sign_rng=sign_rng, sign_flip=SIGN_ERRORS[reader])
        self.stdout.write(f"Demo study '{study.name}' with {len(case_dirs)} cases; {len(case_dirs) - 1} already read by reader1 and reader2.")

    def _accounts(self, password: str) -> dict[str, User]:
        users = {}
        for username in ACCOUNTS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.save()
            if ACCOUNTS[username] == StudyMembership.Role.LEAD:  # leads create studies from the browser
                user.user_permissions.add(Permission.objects.get(codename="add_readerstudy", content_type__app_label="studies"))
            users[username] = user
        # The ML engineer registers and activates models and watches the GPU queue (/ai/); no study role.
        engineer, _ = User.objects.get_or_create(username="mlengineer")
        engineer.set_password(password)
        engineer.save()
        engineer.groups.add(Group.objects.get(name="ML engineers"))
        return users

    def _import_case(self, study: ReaderStudy, case_dir: Path, truth: dict[str, Any]) -> Case:
        result = cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study, label_prefix="Phantom")
        (study_uid,) = result.study_instance_uids
        for series_uid in truth["series"].values():
            reference_segmentation_import(
                series=series_get_by_original_uid(original_series_instance_uid=series_uid),
                source="phantom ground truth",
                npz_path=case_dir / "truth" / f"{series_uid}.npz",
                label_map=truth["label_map"],
            )
        return Case.objects.get(reader_study=study, dicom_study__study_instance_uid=study_uid)

    def _simulate_read(
        self, assignment: Any, reader: User, truth: dict[str, Any], rng: np.random.Generator, up: float, down: float, *, sign_rng: np.random.Generator, sign_flip: float
    ) -> None:
        protocol = assignment.case.reader_study.protocol
        categories = condition_categories(protocol, "central_canal")
        sign_categories = condition_categories(protocol, "sedimentation_sign")  # absent, present
        cutoffs = tuple(protocol["ai_grade"]["dsca_cutoffs_mm2"])
        grades = []
        for level in protocol["levels"]:
            true_index = stenosis_grade_from_dsca(truth["levels"][level]["dsca_mm2"], cutoffs_mm2=cutoffs)
            index = simulated_grade(true_index, rng=rng, up=up, down=down, n_categories=len(categories))
            grades.append({"level": level, "condition": "central_canal", "value": categories[index]})
            if "sedimentation_sign" in truth["levels"][level]:  # phantoms written before the sign have none
                present = bool(truth["levels"][level]["sedimentation_sign"]) != (sign_rng.random() < sign_flip)
                grades.append({"level": level, "condition": "sedimentation_sign", "value": sign_categories[int(present)]})
        provenance = "simulated demo reader"
        version = read_save(assignment=assignment, user=reader, base_version=0, grades=grades, provenance=provenance)
        read_submit(assignment=assignment, user=reader, base_version=version.version, provenance=provenance)
