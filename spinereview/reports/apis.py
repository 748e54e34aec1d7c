from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spinereview.core.errors import NotFoundError
from spinereview.reports.selectors import agreement_summary
from spinereview.studies.selectors import reader_studies_supervised


class AgreementApi(APIView):
    """Quadratic-weighted kappa per rater pair (readers and AI) and Dice of AI masks vs reference.

    Leads, adjudicators and staff only: readers never see other readers' grades.
    """

    @extend_schema(responses={200: dict})
    def get(self, request: Request, slug: str) -> Response:
        reader_study = reader_studies_supervised(user=request.user).filter(slug=slug).first()  # type: ignore[arg-type]
        if reader_study is None:
            raise NotFoundError("No such reader study, or you do not lead it")
        return Response(agreement_summary(reader_study=reader_study).as_dict())
