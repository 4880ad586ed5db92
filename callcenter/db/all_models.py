"""Imports every domain's tables so that `Base.metadata` is complete (Alembic, tests)."""
from callcenter.admin import models as _admin  # noqa: F401
from callcenter.calls import models as _calls  # noqa: F401
from callcenter.notices import models as _notices  # noqa: F401
from callcenter.qa import models as _qa  # noqa: F401
from callcenter.recording import models as _recording  # noqa: F401
from callcenter.sms import models as _sms  # noqa: F401
from callcenter.web import models as _web  # noqa: F401
from callcenter.workorders import models as _workorders  # noqa: F401
