#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| imipsec_fuzz::openpgp(data));
