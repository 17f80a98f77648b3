//! iCalendar parser differentials and one ORGANIZER and UID per object (issue #11 item 4 and 10).
