//! The libFuzzer driver: one binary for every target, the target named by the environment
//! variable `MSSANTE_FUZZ_TARGET` (one instrumented build instead of one per target).
//! Built and run by `scripts/fuzz` (docs/fuzzing.md).
#![no_main]

use std::sync::OnceLock;

fn target() -> fn(&[u8]) {
    static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let name = std::env::var("MSSANTE_FUZZ_TARGET").unwrap_or_default();
        mssante_fuzz::target(&name).unwrap_or_else(|| {
            eprintln!(
                "MSSANTE_FUZZ_TARGET must name one of: {}",
                mssante_fuzz::TARGETS
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            std::process::exit(2)
        })
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| target()(data));
