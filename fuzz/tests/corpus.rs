//! Replays the committed corpus of every fuzz target (docs/fuzzing.md): the inputs the fuzzer
//! kept for their coverage, and every input that once crashed a parser (named `crash-*`,
//! each a regression test for the fix). A panic here is a parser bug.

use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

#[test]
fn every_target_has_a_committed_corpus() {
    for (name, _) in mssante_fuzz::TARGETS {
        let count = std::fs::read_dir(corpus_dir(name))
            .unwrap_or_else(|e| panic!("corpus/{name}: {e}"))
            .count();
        assert!(count > 0, "corpus/{name} is empty");
    }
}

#[test]
fn corpus_replays_without_a_panic() {
    let mut replayed = 0;
    for (name, run) in mssante_fuzz::TARGETS {
        let Ok(entries) = std::fs::read_dir(corpus_dir(name)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&input));
            assert!(outcome.is_ok(), "{name}: {} panicked", path.display());
            replayed += 1;
        }
    }
    println!("replayed {replayed} corpus inputs");
    assert!(replayed >= mssante_fuzz::TARGETS.len());
}
