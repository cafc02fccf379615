-- When a finished job's keyframe images were deleted (KEYFRAME_RETENTION_DAYS); NULL: never.
-- Kept so its Retry button can say why it no longer works instead of retrying without them.
ALTER TABLE jobs ADD COLUMN media_pruned_at REAL;
