#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| imipsec_fuzz::itip_full_text(data));
