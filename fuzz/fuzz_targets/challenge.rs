//! See `layerscope_fuzz::challenge` for what this target feeds and checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = layerscope_fuzz::challenge(data);
});
