"""Parameter checks (they live in :mod:`commpress._checks`, shared by every layer)."""

from commpress._checks import check_choice, check_float, check_float_bits, check_int, check_p_norm  # noqa: F401
