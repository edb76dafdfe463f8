"""English dates as in the United Kingdom, with the 24-hour clock (Django's ``en`` is US style)."""

DATE_FORMAT = "j F Y"  # 12 February 2026
TIME_FORMAT = "H:i"  # 16:15
DATETIME_FORMAT = "j F Y, H:i"  # 12 February 2026, 16:15
YEAR_MONTH_FORMAT = "F Y"
MONTH_DAY_FORMAT = "j F"
SHORT_DATE_FORMAT = "d/m/Y"  # 12/02/2026
SHORT_DATETIME_FORMAT = "d/m/Y H:i"  # 12/02/2026 16:15
FIRST_DAY_OF_WEEK = 1  # Monday

# The first input format is also how a date field shows its value: ISO, as <input type="date"> needs.
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y"]
DATETIME_INPUT_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"]
TIME_INPUT_FORMATS = ["%H:%M:%S", "%H:%M"]

DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
