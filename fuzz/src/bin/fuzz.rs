//! The libFuzzer driver: one binary for every target, the target named by the environment
//! variable `MSSANTE_FUZZ_TARGET` (one instrumented build instead of one per target).
//! Built and run by `scripts/fuzz` (docs/fuzzing.md).
#![no_main]

use std::sync::OnceLock;

fn target() -> fn(&[u8]) {
    static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let_known_upstream_panics_unwind();
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

/// libFuzzer's panic hook aborts at the panic, before any `catch_unwind` can run. mail-parser
/// 0.11 panics on some malformed multiparts and the server catches that
/// (`receipts/src/parse.rs::parse_message`), so such a panic is let unwind to the code's own
/// catch. If nothing catches it, libfuzzer-sys's `catch_unwind` around the target still aborts,
/// so a panic reaching the server is still a crash; any other panic aborts at once, as before.
fn let_known_upstream_panics_unwind() {
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_mail_parser = info
            .location()
            .is_some_and(|l| l.file().contains("/mail-parser-"));
        if !in_mail_parser {
            abort_hook(info);
        }
    }));
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| target()(data));
