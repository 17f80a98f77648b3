//! Event state: running without a store is explicit, and every verdict says whether state was checked (issue #11 item 10).
