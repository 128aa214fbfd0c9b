//! Export and import job rows of the HTTP API (ADR 0039), on SQLite and on a real
//! PostgreSQL: a bounded number active per kind, claimed by their own node only and in
//! order, removed rows stop their work, and jobs left running by a stop are queued again
//! until their attempts run out.

use mssante_store::*;
use mssante_testkit::engine_tests;

fn new_job<'a>(kind: &'a str, node: &'a str) -> NewJob<'a> {
    NewJob {
        kind,
        node,
        client: "key:abc",
        request: "{\"all\":true}",
        progress: "{}",
        file: Some("/data/jobs/export-1.tar"),
    }
}

engine_tests!(
    jobs_are_bounded_claimed_in_order_and_requeued,
    |engine| async move {
        let db = mssante_testkit::TestDb::new(engine);
        let store = Store::open(&db.url, db.data_path()).await.unwrap();
        let first = store
            .create_job(&new_job("export", "a"), 2)
            .await
            .unwrap()
            .unwrap();
        let second = store
            .create_job(&new_job("export", "b"), 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.state, "queued");
        // Two exports active: a third is refused, an import is not.
        assert!(
            store
                .create_job(&new_job("export", "a"), 2)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .create_job(&new_job("import", "a"), 2)
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.job("import", first.id).await.unwrap().is_none());

        // Node a takes its own export only, once.
        let claimed = store.claim_job("a", "export").await.unwrap().unwrap();
        assert_eq!(
            (claimed.id, claimed.state.as_str(), claimed.attempts),
            (first.id, "running", 1)
        );
        assert!(store.claim_job("a", "export").await.unwrap().is_none());
        assert!(
            store
                .job_progress(first.id, "{\"messages_done\":3}")
                .await
                .unwrap()
        );

        // A stop: the running job is queued again, then runs a second time.
        assert_eq!(
            store.requeue_interrupted_jobs("a", 2, "{}").await.unwrap(),
            1
        );
        let again = store.claim_job("a", "export").await.unwrap().unwrap();
        assert_eq!(
            (again.attempts, again.progress.as_str()),
            (2, "{\"messages_done\":3}")
        );
        // Another stop with its attempts spent: failed, with the error given.
        assert_eq!(
            store
                .requeue_interrupted_jobs("a", 2, "{\"gone\":1}")
                .await
                .unwrap(),
            0
        );
        let failed = store.job("export", first.id).await.unwrap().unwrap();
        assert_eq!(
            (failed.state.as_str(), failed.error.as_deref()),
            ("failed", Some("{\"gone\":1}"))
        );
        assert!(failed.finished_at.is_some());

        // Node b's job ends; a removed job says so to its worker.
        let claimed = store.claim_job("b", "export").await.unwrap().unwrap();
        let end = JobEnd {
            result: Some("{\"bals\":1}".into()),
            file_size: Some(10),
            file_sha256: Some("ab".into()),
            ..JobEnd::default()
        };
        assert!(store.finish_job(claimed.id, "{}", &end).await.unwrap());
        let done = store.job("export", second.id).await.unwrap().unwrap();
        assert_eq!((done.state.as_str(), done.file_size), ("done", Some(10)));
        assert!(store.remove_job("export", second.id).await.unwrap());
        assert!(!store.job_progress(second.id, "{}").await.unwrap());
        assert!(!store.finish_job(second.id, "{}", &end).await.unwrap());
        assert!(!store.remove_job("export", second.id).await.unwrap());
    }
);
