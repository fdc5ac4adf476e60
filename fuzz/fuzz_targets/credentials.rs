//! See `layerscope_fuzz::credentials` for what this target feeds and checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = layerscope_fuzz::credentials(data);
});
