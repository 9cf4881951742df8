"""The reward history's names under their former module path; the home is `limr_exp.history` (a package:
one module per importer, the matcher, the table, the curves)."""

from limr_exp.history import *  # noqa: F401,F403
from limr_exp.history import __all__  # noqa: F401
