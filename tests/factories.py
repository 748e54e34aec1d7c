"""factory_boy factories for the integration and end-to-end tests."""

from __future__ import annotations

from typing import Any, cast

import factory

from spinereview.accounts.models import User
from spinereview.studies.models import ReaderStudy, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL, protocol_validate

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class ReaderStudyFactory(factory.django.DjangoModelFactory[ReaderStudy]):
    class Meta:
        model = ReaderStudy

    name = factory.Sequence(lambda n: f"Study {n}")
    slug = factory.Sequence(lambda n: f"study-{n}")
    protocol = factory.LazyFunction(lambda: protocol_validate(DEFAULT_PROTOCOL))


class MembershipFactory(factory.django.DjangoModelFactory[StudyMembership]):
    class Meta:
        model = StudyMembership

    reader_study = factory.SubFactory(ReaderStudyFactory)
    user = factory.SubFactory(UserFactory)
    role = StudyMembership.Role.READER


# Typed entry points: factory_boy's call returns the model at run time but not for mypy.
def make_user(**kwargs: Any) -> User:
    return cast(User, UserFactory(**kwargs))


def make_reader_study(**kwargs: Any) -> ReaderStudy:
    """A reader study; a `protocol` given here is validated and stored normalised, as the service does."""
    if "protocol" in kwargs:
        kwargs["protocol"] = protocol_validate(kwargs["protocol"])
    return cast(ReaderStudy, ReaderStudyFactory(**kwargs))


def make_membership(**kwargs: Any) -> StudyMembership:
    return cast(StudyMembership, MembershipFactory(**kwargs))
