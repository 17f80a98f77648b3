//! encrypt (to be written)
