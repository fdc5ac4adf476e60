//! See `layerscope_fuzz::archive` for what this target feeds and checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = layerscope_fuzz::archive(data);
});
