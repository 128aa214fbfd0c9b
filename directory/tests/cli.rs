//! `mssante directory …` as the binary will parse and run it.

mod common;

use clap::Parser;
use common::*;
use mssante_directory::{DirectoryCommand, DirectoryConfig, run};
use mssante_store::ImportStatus;
use mssante_testkit::engine_tests;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: DirectoryCommand,
}

fn parse(args: &[&str]) -> DirectoryCommand {
    Cli::try_parse_from(std::iter::once("directory").chain(args.iter().copied()))
        .expect("parse")
        .command
}

engine_tests!(
    cli_imports_refuses_a_drop_and_looks_up,
    |engine| async move {
        let (store, _db) = open(engine).await;
        let config: DirectoryConfig = toml::from_str(&format!(
            "extraction = {:?}\nmax_drop = 0.5\n",
            fixture(SAMPLE).to_str().unwrap()
        ))
        .unwrap();
        run(parse(&["import"]), &store, &config)
            .await
            .expect("import from the configured location");
        // 1,500 rows against 2,000 is a 25 % drop: fine with max_drop = 0.5, refused with --max-drop 0.1.
        let text = std::fs::read_to_string(fixture(SAMPLE)).unwrap();
        let truncated = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            truncated.path(),
            text.lines().take(1501).collect::<Vec<_>>().join("\n"),
        )
        .unwrap();
        let path = truncated.path().to_str().unwrap();
        let refused = run(
            parse(&["import", path, "--max-drop", "0.1"]),
            &store,
            &config,
        )
        .await;
        assert!(format!("{:#}", refused.unwrap_err()).contains("drop guard"));
        assert_eq!(
            store.directory_history(1).await.unwrap()[0].status,
            ImportStatus::Refused
        );
        run(parse(&["import", path]), &store, &config)
            .await
            .expect("within max_drop");
        assert_eq!(store.directory_history(1).await.unwrap()[0].rows, 1500);
        for query in [
            &["lookup", "Antoine.Bernard@adapei.mssante.fr"][..],
            &["lookup", "10949939960"],
            &["lookup", "mar", "--profession", "10", "--postcode", "75"],
        ] {
            run(parse(query), &store, &config).await.expect("lookup");
        }
        run(parse(&["history"]), &store, &config).await.unwrap();
        run(parse(&["history", "1"]), &store, &config)
            .await
            .unwrap();
        assert!(
            run(parse(&["sync-ldap"]), &store, &config).await.is_err(),
            "no [directory.ldap]"
        );
        assert!(
            toml::from_str::<DirectoryConfig>("unknown = 1").is_err(),
            "deny_unknown_fields"
        );
    }
);
