-- Which images steer a job (VideoParams.media): its job_media kinds, comma-separated in the
-- order first_frame, last_frame, reference; '' for none. Kept after the images are pruned.
ALTER TABLE jobs ADD COLUMN media TEXT NOT NULL DEFAULT '';
-- Jobs stored before: read from their images (alphabetical order is the order above). Jobs
-- whose images were already pruned keep '': they are finished, and their Retry refuses.
UPDATE jobs SET media = COALESCE(
    (SELECT group_concat(kind, ',') FROM (
        SELECT kind FROM job_media WHERE job_media.job_id = jobs.id ORDER BY kind
    )),
    ''
)
WHERE id IN (SELECT job_id FROM job_media);
