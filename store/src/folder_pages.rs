//! A folder read page by page in UID order, for the HTTP API's readers (software that files
//! new reports): what came in after a UID, without the IMAP session's view.

use crate::Store;
use crate::error::Result;
use crate::folder_messages::{StoredMessage, stored_from_row};

impl Store {
    /// Up to `limit` messages of folder `folder_id` with a UID above `after_uid`, by UID.
    pub async fn folder_page(
        &self,
        folder_id: i64,
        after_uid: i64,
        limit: i64,
    ) -> Result<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT mm.uid, mm.modseq, mm.message_id, mm.flags, mm.internaldate, m.blob_hash, m.size \
             FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1 AND mm.uid > $2 ORDER BY mm.uid LIMIT $3",
        )
        .bind(folder_id)
        .bind(after_uid)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(stored_from_row).collect()
    }
}
