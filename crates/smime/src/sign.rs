//! sign (to be written)
