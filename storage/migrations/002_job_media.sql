-- Images a job is steered with, already checked and resized: needed again after a restart.
CREATE TABLE job_media (
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind    TEXT    NOT NULL CHECK (kind IN ('first_frame', 'last_frame', 'reference')),
    data    BLOB    NOT NULL,
    PRIMARY KEY (job_id, kind)
);

-- The keyframe shown as the progress message's thumbnail (an attachment's file name), if any.
ALTER TABLE jobs ADD COLUMN thumbnail TEXT;
