//! Calendar content outside text/calendar and MIME parser differentials (issue #11 items 2, 3).
