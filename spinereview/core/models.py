import uuid

from django.db import models


class BaseModel(models.Model):
    """UUID primary key and creation/modification times for every domain row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
