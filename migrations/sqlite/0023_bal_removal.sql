-- `mssante bal remove` (ADR 0033): a closed BAL whose folders, aliases, grants, API key and
-- client-certificate bindings were deleted. The row stays, as the anchor of its audit trail
-- and of the delivery traces kept until retention expires them; its address stays reserved
-- (never given to another holder) and answers 550 5.1.1. Keep in step with
-- migrations/postgres/0023_bal_removal.sql.
ALTER TABLE bals ADD COLUMN removed_at BIGINT;
