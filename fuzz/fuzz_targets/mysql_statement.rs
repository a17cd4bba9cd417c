#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gatehouse_fuzz::mysql_statement(data));
