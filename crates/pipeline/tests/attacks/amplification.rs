//! Amplification: maximum key sizes and the per-message verification budget (issue #11 item 7).
