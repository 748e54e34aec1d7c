import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person using SpineReview. Study roles (lead, reader, adjudicator) live on study memberships."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
