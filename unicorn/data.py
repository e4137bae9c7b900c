"""Deprecated name: this module is now `unicorn.trainer_data`.
Renamed so that its name says what it is; importing it here still works and warns;
it will be removed in a later release."""

import importlib
import sys
import warnings

warnings.warn(f"{__name__} is deprecated; import unicorn.trainer_data instead", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("unicorn.trainer_data")
