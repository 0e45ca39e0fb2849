"""Every domain's tables, gathered so that Alembic and tests see one metadata.

A new domain adds one import line here.
"""

from territoire.alarms import models as alarms_models
from territoire.db.base import Base
from territoire.interventions import models as interventions_models
from territoire.registry import models as registry_models
from territoire.requests import models as requests_models
from territoire.rules import models as rules_models
from territoire.telemetry import models as telemetry_models
from territoire.tenancy import models as tenancy_models

metadata = Base.metadata

__all__ = [
    "alarms_models",
    "interventions_models",
    "metadata",
    "registry_models",
    "requests_models",
    "rules_models",
    "telemetry_models",
    "tenancy_models",
]
