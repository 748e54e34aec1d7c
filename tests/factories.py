"""factory_boy factories for the integration and end-to-end tests."""

from __future__ import annotations

import factory

from spinereview.accounts.models import User
from spinereview.studies.models import ReaderStudy, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class ReaderStudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReaderStudy

    name = factory.Sequence(lambda n: f"Study {n}")
    slug = factory.Sequence(lambda n: f"study-{n}")
    protocol = factory.LazyFunction(lambda: dict(DEFAULT_PROTOCOL))


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StudyMembership

    reader_study = factory.SubFactory(ReaderStudyFactory)
    user = factory.SubFactory(UserFactory)
    role = StudyMembership.Role.READER
