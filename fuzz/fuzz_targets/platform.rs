//! See `layerscope_fuzz::platform` for what this target feeds and checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = layerscope_fuzz::platform(data);
});
