"""Every domain's tables, gathered so that Alembic and tests see one metadata.

A new domain adds one import line here.
"""

from territoire.db.base import Base
from territoire.registry import models as registry_models
from territoire.tenancy import models as tenancy_models

metadata = Base.metadata

__all__ = ["metadata", "registry_models", "tenancy_models"]
