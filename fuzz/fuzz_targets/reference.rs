//! See `layerscope_fuzz::reference` for what this target feeds and checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = layerscope_fuzz::reference(data);
});
