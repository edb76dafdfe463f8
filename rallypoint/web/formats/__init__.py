"""Date and number formats of the languages whose Django defaults do not suit a site (FORMAT_MODULE_PATH).

English follows British conventions with the 24-hour clock, as the sites expect (an alarm raised at
16:15 reads "16:15", never "4:15 p.m."); German keeps Django's German formats.
"""
